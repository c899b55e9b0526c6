//! `[[threshold]]` tables: each expression parsed (see `crate::thresholds`),
//! its phase and target names checked, mistakes located by line and key.

use serde::Deserialize;

use super::Phase;
use super::locator::Locator;
use crate::error::Result;
use crate::target::TargetSpec;
use crate::thresholds::Threshold;

/// `[[threshold]]`: expressions for a phase and target (default: all).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThreshold {
    phase: Option<String>,
    target: Option<String>,
    expect: Vec<String>,
}

/// Parses every `[[threshold]]` expression; phase and target names are
/// checked against the file's (targets only when the file has some: they
/// may come from the command line).
pub(super) fn convert_thresholds(
    at: &Locator<'_>,
    raw: &[RawThreshold],
    phases: &[Phase],
    targets: &[TargetSpec],
) -> Result<Vec<Threshold>> {
    let phase_names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
    let target_names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let mut thresholds = Vec::new();
    for (index, table) in raw.iter().enumerate() {
        if let Some(phase) = &table.phase
            && !phase_names.contains(&phase.as_str())
        {
            return Err(at.invalid(
                "threshold",
                index,
                "phase",
                format!(
                    "no phase is named {phase:?} (the phases: {})",
                    phase_names.join(", ")
                ),
            ));
        }
        if let Some(target) = &table.target
            && !targets.is_empty()
            && !target_names.contains(&target.as_str())
        {
            return Err(at.invalid(
                "threshold",
                index,
                "target",
                format!(
                    "no target is named {target:?} (the targets: {})",
                    target_names.join(", ")
                ),
            ));
        }
        if table.expect.is_empty() {
            return Err(at.invalid(
                "threshold",
                index,
                "expect",
                "give at least one expression, e.g. expect = [\"p99 < 2 ms\"]",
            ));
        }
        let line = at.line_of("threshold", index, "expect");
        for expression in &table.expect {
            let threshold = Threshold::parse(
                expression,
                table.phase.clone(),
                table.target.clone(),
                format!("{}:{line}", at.path),
            )
            .map_err(|m| {
                at.invalid("threshold", index, "expect", format!("{expression:?}: {m}"))
            })?;
            if !targets.is_empty() {
                threshold
                    .check_names(&phase_names, &target_names)
                    .map_err(|m| at.invalid("threshold", index, "expect", m))?;
            }
            thresholds.push(threshold);
        }
    }
    Ok(thresholds)
}

#[cfg(test)]
mod tests {
    use crate::suite::Suite;

    const HEAD: &str = "[keys]\ngenerate = 10\n\n[[phase]]\nname = \"a\"\n\n";

    fn err(rest: &str) -> String {
        Suite::parse(&format!("{HEAD}{rest}"), "s.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn thresholds_parse_with_their_origin() {
        let text = format!(
            "{HEAD}[[threshold]]\nphase = \"a\"\nexpect = [\"p99 < 2 ms\", \"errors = 0\"]\n\n[[threshold]]\nexpect = [\"engine.p99 <= 1.5 * nginx.p99\"]\n"
        );
        let suite = Suite::parse(&text, "s.toml").unwrap();
        assert_eq!(suite.thresholds.len(), 3);
        assert_eq!(suite.thresholds[0].origin, "s.toml:9");
        assert_eq!(suite.thresholds[0].phase.as_deref(), Some("a"));
        assert_eq!(suite.thresholds[2].origin, "s.toml:12");
        assert_eq!(suite.thresholds[2].target.as_deref(), Some("engine"));
        // The file has no targets: they come from the command line, and
        // are checked once known.
        let message = suite.check_thresholds().unwrap_err().to_string();
        assert!(
            message.starts_with(
                "s.toml:12: \"engine.p99 <= 1.5 * nginx.p99\": no target is named \"engine\""
            ),
            "{message}"
        );
    }

    #[test]
    fn threshold_mistakes_name_the_line_and_key() {
        let message = err("[[threshold]]\nphase = \"a\"\nexpect = [\"p98 < 2 ms\"]\n");
        assert!(
            message.starts_with(
                "s.toml:9:1: [threshold] expect: \"p98 < 2 ms\": unknown metric \"p98\" at character 1"
            ),
            "{message}"
        );
        let message = err("[[threshold]]\nphase = \"b\"\nexpect = [\"p99 < 2 ms\"]\n");
        assert!(
            message.starts_with(
                "s.toml:8:1: [threshold] phase: no phase is named \"b\" (the phases: a)"
            ),
            "{message}"
        );
        let message = err(
            "[[threshold]]\nexpect = [\"errors = 0\"]\n\n[[threshold]]\nexpect = [\"p99 < 2 furlongs\"]\n",
        );
        assert!(
            message.starts_with("s.toml:11:1: [threshold] expect: \"p99 < 2 furlongs\": \"furlongs\" is not a unit for p99"),
            "{message}"
        );
        let message = err("[[threshold]]\nexpects = [\"p99 < 2 ms\"]\n");
        assert!(message.starts_with("s.toml:8:"), "{message}");
        let message = err("[[threshold]]\nexpect = []\n");
        assert!(
            message.contains("[threshold] expect: give at least one"),
            "{message}"
        );
        let targets = "[[target]]\nname = \"engine\"\nurl = \"http://127.0.0.1:1\"\n\n";
        let message = err(&format!(
            "{targets}[[threshold]]\nexpect = [\"engine.p99 <= nginx.p99\"]\n"
        ));
        assert!(
            message.starts_with("s.toml:12:1: [threshold] expect: \"engine.p99 <= nginx.p99\": no target is named \"nginx\" (the targets: engine)"),
            "{message}"
        );
        let message = err(&format!(
            "{targets}[[threshold]]\ntarget = \"nginx\"\nexpect = [\"p99 < 1 ms\"]\n"
        ));
        assert!(
            message.starts_with("s.toml:12:1: [threshold] target: no target is named \"nginx\""),
            "{message}"
        );
    }
}
