//! Ricochet load tester (being built).
