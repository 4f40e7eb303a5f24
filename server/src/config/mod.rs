//! Configuration: types, loading and merging (user file, workspace file, client settings), validation and trust.

mod load;
pub mod types;

pub use load::{
    ConfigError, ConfigSources, LoadedConfig, data_dir, json_schema, load, overlay,
    parse_client_settings, user_config_path, validate,
};
pub use types::*;
