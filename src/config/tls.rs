//! The `tls-*` parameters (Redis 7.0's names, defaults and bounds). What
//! they mean is `crate::server::tls`'s business: it loads them into a
//! rustls configuration at start-up and again after CONFIG SET changes one.

use super::params::config_table;
use super::{BoolParam, EnumParam, INT_MAX, IntParam, StrParam};

pub const AUTH_CLIENTS: &[&str] = &["no", "yes", "optional"];

// The rows [`super::Config::params`] lists after its own (in this order).
config_table! {
    pub struct TlsConfig {
        cert_file: Str = StrParam::new(""), "tls-cert-file", Mutable;
        key_file: Str = StrParam::new(""), "tls-key-file", Mutable;
        key_file_pass: Str = StrParam::new(""), "tls-key-file-pass", Mutable;
        client_cert_file: Str = StrParam::new(""), "tls-client-cert-file", Mutable;
        client_key_file: Str = StrParam::new(""), "tls-client-key-file", Mutable;
        client_key_file_pass: Str = StrParam::new(""), "tls-client-key-file-pass", Mutable;
        dh_params_file: Str = StrParam::new(""), "tls-dh-params-file", Mutable;
        ca_cert_file: Str = StrParam::new(""), "tls-ca-cert-file", Mutable;
        ca_cert_dir: Str = StrParam::new(""), "tls-ca-cert-dir", Mutable;
        auth_clients: Enum = EnumParam::new(1, AUTH_CLIENTS), "tls-auth-clients", Mutable;
        protocols: Str = StrParam::new(""), "tls-protocols", Mutable;
        ciphers: Str = StrParam::new(""), "tls-ciphers", Mutable;
        ciphersuites: Str = StrParam::new(""), "tls-ciphersuites", Mutable;
        prefer_server_ciphers: Bool = BoolParam::new(false), "tls-prefer-server-ciphers", Mutable;
        session_caching: Bool = BoolParam::new(true), "tls-session-caching", Mutable;
        session_cache_size: Int = IntParam::new(20480, 0, INT_MAX), "tls-session-cache-size", Mutable;
        session_cache_timeout: Int = IntParam::new(300, 0, INT_MAX),
            "tls-session-cache-timeout", Mutable;
        replication: Bool = BoolParam::new(false), "tls-replication", Mutable;
        cluster: Bool = BoolParam::new(false), "tls-cluster", Mutable;
    }
}
