//! The expression language of thresholds: `METRIC OP LIMIT`, where the
//! limit is a number with a unit or `K * TARGET.METRIC`; a tokenizer and a
//! recursive-descent parser whose errors give the character position.

use super::{Comparison, Dimension, Limit, Metric, Reference};

/// The left metric, the comparison and the limit (in the metric's unit).
pub(super) fn expression(expression: &str) -> Result<(Reference, Comparison, Limit), String> {
    let tokens = tokenize(expression)?;
    let mut parser = Parser {
        tokens: &tokens,
        next: 0,
    };
    let left = parser.side()?;
    let comparison = match parser.take() {
        Some((_, Token::Compare(c))) => *c,
        Some((at, token)) => {
            return Err(format!(
                "expected <, <=, >, >= or = at character {}, found {}",
                at + 1,
                token.describe()
            ));
        }
        None => return Err("expected a comparison: <, <=, >, >= or =".into()),
    };
    let right = parser.side()?;
    if let Some((at, token)) = parser.take() {
        return Err(format!(
            "unexpected {} at character {}",
            token.describe(),
            at + 1
        ));
    }
    let left = match left {
        Side::Reference {
            factor: None,
            reference,
        } => reference,
        _ => {
            return Err(
                "the left side must be a metric, e.g. `p99`, `errors` or `engine.p99`".into(),
            );
        }
    };
    let limit = match right {
        Side::Reference { factor, reference } => {
            if reference.metric.dimension() != left.metric.dimension() {
                return Err(format!(
                    "{} cannot be compared with {} (different units)",
                    left.metric.name(),
                    reference.metric.name()
                ));
            }
            Limit::Scaled {
                factor: factor.unwrap_or(1.0),
                reference,
            }
        }
        Side::Quantity { value, unit } => {
            Limit::Value(convert(left.metric, value, unit.as_deref())?)
        }
    };
    Ok((left, comparison, limit))
}

/// A number in `unit` (or none) as the metric's unit.
fn convert(metric: Metric, value: f64, unit: Option<&str>) -> Result<f64, String> {
    let scale = match (metric.dimension(), unit) {
        (Dimension::Latency, None) => {
            return Err(format!(
                "{}: give a unit: ms, us or s (e.g. `{} < 2 ms`)",
                metric.name(),
                metric.name()
            ));
        }
        (Dimension::Latency, Some(unit)) => time_scale(unit).map(|s| s * 1000.0),
        (Dimension::CpuTime, None) => Some(1.0),
        (Dimension::CpuTime, Some(unit)) => time_scale(unit).map(|s| s * 1e6),
        (Dimension::Count, None) => Some(1.0),
        (Dimension::Rate, None | Some("req/s" | "/s" | "rps")) => Some(1.0),
        (Dimension::Memory, None | Some("MB" | "MiB")) => Some(1.0),
        (Dimension::Memory, Some("KB" | "KiB")) => Some(1.0 / 1024.0),
        (Dimension::Memory, Some("GB" | "GiB")) => Some(1024.0),
        _ => None,
    };
    let expected = match metric.dimension() {
        Dimension::Latency | Dimension::CpuTime => "ns, us (µs), ms or s",
        Dimension::Count => "none (a count)",
        Dimension::Rate => "none or req/s",
        Dimension::Memory => "KB, MB or GB",
    };
    scale.map(|s| value * s).ok_or_else(|| {
        format!(
            "{:?} is not a unit for {}: expected {expected}",
            unit.unwrap_or(""),
            metric.name()
        )
    })
}

/// Seconds per unit of time.
fn time_scale(unit: &str) -> Option<f64> {
    match unit {
        "ns" => Some(1e-9),
        "us" | "µs" => Some(1e-6),
        "ms" => Some(1e-3),
        "s" => Some(1.0),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    /// A metric, `target.metric`, or a unit.
    Word(String),
    Compare(Comparison),
    Times,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Number(n) => format!("the number {n}"),
            Self::Word(w) => format!("{w:?}"),
            Self::Compare(_) => "a comparison".into(),
            Self::Times => "`*`".into(),
        }
    }
}

/// Splits an expression into tokens, each with its character position.
fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let word_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | 'µ');
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_digit() || matches!(chars[i], '.' | '_')) {
                i += 1;
            }
            let digits: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let value: f64 = digits
                .parse()
                .map_err(|_| format!("{digits:?} at character {} is not a number", start + 1))?;
            tokens.push((start, Token::Number(value)));
        } else if c.is_alphabetic() || c == '/' || c == 'µ' {
            while i < chars.len() && word_char(chars[i]) {
                i += 1;
            }
            tokens.push((start, Token::Word(chars[start..i].iter().collect())));
        } else if c == '*' {
            i += 1;
            tokens.push((start, Token::Times));
        } else if matches!(c, '<' | '>' | '=') {
            let equals_next = chars.get(i + 1) == Some(&'=');
            let comparison = match (c, equals_next) {
                ('<', true) => Comparison::LessOrEqual,
                ('<', false) => Comparison::Less,
                ('>', true) => Comparison::GreaterOrEqual,
                ('>', false) => Comparison::Greater,
                _ => Comparison::Equal,
            };
            i += if equals_next { 2 } else { 1 };
            tokens.push((start, Token::Compare(comparison)));
        } else {
            return Err(format!("unexpected {c:?} at character {}", start + 1));
        }
    }
    Ok(tokens)
}

/// One side of a comparison.
enum Side {
    /// `2 ms`, `100000`, `0`.
    Quantity { value: f64, unit: Option<String> },
    /// `p99`, `nginx.p99`, `1.2 * nginx.p99`, `nginx.p99 * 1.2`.
    Reference {
        factor: Option<f64>,
        reference: Reference,
    },
}

struct Parser<'a> {
    tokens: &'a [(usize, Token)],
    next: usize,
}

impl<'a> Parser<'a> {
    fn take(&mut self) -> Option<&'a (usize, Token)> {
        let token = self.tokens.get(self.next)?;
        self.next += 1;
        Some(token)
    }

    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn side(&mut self) -> Result<Side, String> {
        match self.take() {
            Some((_, Token::Number(value))) => {
                if self.peek() == Some(&Token::Times) {
                    self.next += 1;
                    let reference = self.reference()?;
                    return Ok(Side::Reference {
                        factor: Some(*value),
                        reference,
                    });
                }
                let unit = match self.peek() {
                    Some(Token::Word(word)) => {
                        self.next += 1;
                        Some(word.clone())
                    }
                    _ => None,
                };
                Ok(Side::Quantity {
                    value: *value,
                    unit,
                })
            }
            Some((_, Token::Word(_))) => {
                self.next -= 1;
                let reference = self.reference()?;
                let factor = match self.peek() {
                    Some(Token::Times) => {
                        self.next += 1;
                        match self.take() {
                            Some((_, Token::Number(n))) => Some(*n),
                            _ => return Err("expected a number after `*`".into()),
                        }
                    }
                    _ => None,
                };
                Ok(Side::Reference { factor, reference })
            }
            Some((at, token)) => Err(format!(
                "expected a metric or a number at character {}, found {}",
                at + 1,
                token.describe()
            )),
            None => Err("expected a metric or a number at the end".into()),
        }
    }

    /// `metric` or `target.metric`.
    fn reference(&mut self) -> Result<Reference, String> {
        let Some((at, Token::Word(word))) = self.take() else {
            return Err("expected a metric such as p99 or nginx.p99".into());
        };
        if let Some(metric) = Metric::parse(word) {
            return Ok(Reference {
                target: None,
                metric,
            });
        }
        let unknown = |name: &str| {
            let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            format!(
                "unknown metric {name:?} at character {} (metrics: {})",
                at + 1,
                known.join(", ")
            )
        };
        match word.split_once('.') {
            Some((target, name)) if !target.is_empty() => match Metric::parse(name) {
                Some(metric) => Ok(Reference {
                    target: Some(target.to_owned()),
                    metric,
                }),
                None => Err(unknown(name)),
            },
            _ => Err(unknown(word)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Threshold;
    use super::*;

    fn parse(text: &str) -> Result<Threshold, String> {
        Threshold::parse(text, None, None, "test".into())
    }

    #[test]
    fn expressions_parse_with_units_and_ratios() {
        let t = parse("p99 < 2 ms").unwrap();
        assert_eq!(t.left.metric, Metric::P99);
        assert_eq!(t.comparison, Comparison::Less);
        assert_eq!(t.limit, Limit::Value(2.0));
        assert_eq!(parse("p99.9<500us").unwrap().limit, Limit::Value(0.5));
        assert_eq!(parse("max <= 1s").unwrap().limit, Limit::Value(1000.0));
        assert_eq!(parse("errors = 0").unwrap().comparison, Comparison::Equal);
        assert_eq!(
            parse("throughput >= 100_000 req/s").unwrap().limit,
            Limit::Value(100_000.0)
        );
        assert_eq!(
            parse("server_cpu_per_request_us <= 8").unwrap().limit,
            Limit::Value(8.0)
        );
        assert_eq!(parse("rss < 1 GB").unwrap().limit, Limit::Value(1024.0));
        let ratio = parse("engine.p99 <= 1.0 * nginx.p99").unwrap();
        assert_eq!(ratio.target.as_deref(), Some("engine"));
        assert_eq!(
            ratio.limit,
            Limit::Scaled {
                factor: 1.0,
                reference: Reference {
                    target: Some("nginx".into()),
                    metric: Metric::P99
                }
            }
        );
        assert!(matches!(
            parse("p99.9 <= p50 * 5").unwrap().limit,
            Limit::Scaled { factor: 5.0, .. }
        ));
    }

    #[test]
    fn mistakes_are_explained() {
        let err = |text: &str| parse(text).unwrap_err();
        assert!(
            err("p98 < 2 ms").contains("unknown metric \"p98\""),
            "{}",
            err("p98 < 2 ms")
        );
        assert!(err("p99 < 2").contains("give a unit"));
        assert!(err("p99 < 2 parsecs").contains("\"parsecs\" is not a unit for p99"));
        assert!(err("errors = 0 ms").contains("not a unit for errors"));
        assert!(err("p99 2 ms").contains("expected <, <=, >, >= or ="));
        assert!(err("p99 < 2 ms ms").contains("unexpected"));
        assert!(err("p99 < throughput").contains("different units"));
        assert!(err("2 ms > p99").contains("left side must be a metric"));
        assert!(err("p99 ! 2").contains("unexpected '!'"));
        assert!(err("").contains("expected a metric"));
        let scoped = Threshold::parse("nginx.p99 < 1 ms", None, Some("engine".into()), "t".into());
        assert!(scoped.unwrap_err().contains("table's target is \"engine\""));
        let t = parse("engine.p99 <= nginx.p99").unwrap();
        assert!(t.check_names(&["main"], &["engine", "nginx"]).is_ok());
        assert!(
            t.check_names(&["main"], &["engine"])
                .unwrap_err()
                .contains("no target is named \"nginx\"")
        );
    }
}
