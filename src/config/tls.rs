//! The `tls-*` parameters (Redis 7.0's names, defaults and bounds). What
//! they mean is `crate::server::tls`'s business: it loads them into a
//! rustls configuration at start-up and again after CONFIG SET changes one.

use super::{Access, BoolParam, EnumParam, INT_MAX, IntParam, Kind, Param, StrParam};

pub const AUTH_CLIENTS: &[&str] = &["no", "yes", "optional"];

pub struct TlsConfig {
    pub cert_file: StrParam,
    pub key_file: StrParam,
    pub key_file_pass: StrParam,
    pub client_cert_file: StrParam,
    pub client_key_file: StrParam,
    pub client_key_file_pass: StrParam,
    pub dh_params_file: StrParam,
    pub ca_cert_file: StrParam,
    pub ca_cert_dir: StrParam,
    pub auth_clients: EnumParam,
    pub protocols: StrParam,
    pub ciphers: StrParam,
    pub ciphersuites: StrParam,
    pub prefer_server_ciphers: BoolParam,
    pub session_caching: BoolParam,
    pub session_cache_size: IntParam,
    pub session_cache_timeout: IntParam,
    pub replication: BoolParam,
    pub cluster: BoolParam,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: StrParam::new(""),
            key_file: StrParam::new(""),
            key_file_pass: StrParam::new(""),
            client_cert_file: StrParam::new(""),
            client_key_file: StrParam::new(""),
            client_key_file_pass: StrParam::new(""),
            dh_params_file: StrParam::new(""),
            ca_cert_file: StrParam::new(""),
            ca_cert_dir: StrParam::new(""),
            auth_clients: EnumParam::new(1, AUTH_CLIENTS),
            protocols: StrParam::new(""),
            ciphers: StrParam::new(""),
            ciphersuites: StrParam::new(""),
            prefer_server_ciphers: BoolParam::new(false),
            session_caching: BoolParam::new(true),
            session_cache_size: IntParam::new(20480, 0, INT_MAX),
            session_cache_timeout: IntParam::new(300, 0, INT_MAX),
            replication: BoolParam::new(false),
            cluster: BoolParam::new(false),
        }
    }
}

impl TlsConfig {
    /// The rows [`super::Config::params`] lists after `tls-port`.
    pub(super) fn params(&self) -> Vec<Param<'_>> {
        use Access::Mutable;
        use Kind::*;
        let p = |name, kind| Param {
            name,
            alias: None,
            kind,
            access: Mutable,
        };
        vec![
            p("tls-cert-file", Str(&self.cert_file)),
            p("tls-key-file", Str(&self.key_file)),
            p("tls-key-file-pass", Str(&self.key_file_pass)),
            p("tls-client-cert-file", Str(&self.client_cert_file)),
            p("tls-client-key-file", Str(&self.client_key_file)),
            p("tls-client-key-file-pass", Str(&self.client_key_file_pass)),
            p("tls-dh-params-file", Str(&self.dh_params_file)),
            p("tls-ca-cert-file", Str(&self.ca_cert_file)),
            p("tls-ca-cert-dir", Str(&self.ca_cert_dir)),
            p("tls-auth-clients", Enum(&self.auth_clients)),
            p("tls-protocols", Str(&self.protocols)),
            p("tls-ciphers", Str(&self.ciphers)),
            p("tls-ciphersuites", Str(&self.ciphersuites)),
            p(
                "tls-prefer-server-ciphers",
                Bool(&self.prefer_server_ciphers),
            ),
            p("tls-session-caching", Bool(&self.session_caching)),
            p("tls-session-cache-size", Int(&self.session_cache_size)),
            p(
                "tls-session-cache-timeout",
                Int(&self.session_cache_timeout),
            ),
            p("tls-replication", Bool(&self.replication)),
            p("tls-cluster", Bool(&self.cluster)),
        ]
    }
}
