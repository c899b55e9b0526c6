//! What every Ricochet binary does before its work: load its configuration in
//! layers (defaults in code, a TOML file, `<PREFIX><SECTION>__<KEY>`
//! environment variables; flags go on top in the binary) and start logging.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `defaults`, then `file` (when given; it must exist), then the environment
/// variables starting with `env_prefix` (`RICOCHET_ENGINE_CLICKS__GEOIP_DATABASE`
/// sets `clicks.geoip_database`). `<PREFIX>CONFIG` names the file, so it is
/// not a setting. Errors name every bad key.
pub fn load_config<T>(defaults: T, file: Option<&Path>, env_prefix: &str) -> Result<T, String>
where
    T: Serialize + DeserializeOwned,
{
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(file) = file {
        if !file.is_file() {
            return Err(format!("config file {} does not exist", file.display()));
        }
        figment = figment.merge(Toml::file(file));
    }
    figment = figment.merge(Env::prefixed(env_prefix).ignore(&["config"]).split("__"));
    figment.extract().map_err(|err| {
        err.into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Logs to standard error, filtered by `RUST_LOG` (default: info, with the
/// storage engine's chatter at warn).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,fjall=warn,lsm_tree=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Settings {
        server: Server,
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Server {
        port: u16,
        name: String,
    }

    #[test]
    // figment's `Jail` fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    fn file_then_environment_override_the_defaults() {
        let dir = std::env::temp_dir().join(format!("ricochet-startup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("settings.toml");
        std::fs::write(&file, "[server]\nport = 1\nname = \"file\"\n").unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("RICOCHET_STARTUP_TEST_SERVER__NAME", "env");
            jail.set_env("RICOCHET_STARTUP_TEST_CONFIG", "ignored.toml");
            let loaded: Settings =
                load_config(Settings::default(), Some(&file), "RICOCHET_STARTUP_TEST_").unwrap();
            assert_eq!(loaded.server.port, 1);
            assert_eq!(loaded.server.name, "env");
            jail.set_env("RICOCHET_STARTUP_TEST_SERVER__PORTT", "2");
            let error = load_config(Settings::default(), None, "RICOCHET_STARTUP_TEST_")
                .map(|_: Settings| ())
                .unwrap_err();
            assert!(error.contains("portt"), "{error}");
            Ok(())
        });
        let missing = load_config(Settings::default(), Some(&dir.join("nope.toml")), "X_");
        assert!(
            missing
                .map(|_: Settings| ())
                .unwrap_err()
                .contains("does not exist")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
