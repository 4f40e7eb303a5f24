//! Configuration: types, loading and merging (user file, workspace file, client settings), validation and trust.

pub mod builtins;
mod load;
pub mod metrics;
pub mod template;
pub mod types;

pub use builtins::builtin_agents;
pub use load::{
    ConfigError, ConfigSources, LoadedConfig, data_dir, json_schema, load, overlay,
    parse_client_settings, user_config_path, validate,
};
pub use types::*;
