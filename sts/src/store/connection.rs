//! Connections to the store's servers: one redis server, the primary a Sentinel set names, or
//! a Redis Cluster, each from the TokenService's URL and topology.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, RedisFuture, TlsCertificates, TlsMode,
};
use signet_crds::snapshot::RedisTopology;

use super::Unavailable;
use super::deny_mirror::Source;
use super::sentinel::SentinelConnection;

/// A connection to one redis server, to the primary the sentinels name, or to a Redis
/// Cluster; each reconnects by itself (the sentinel one asks the sentinels again, the
/// cluster's follows MOVED and ASK). Every operation here names one key, so in a cluster each
/// goes to the node that owns its slot and none spans slots: no key needs a hash tag.
#[derive(Clone)]
pub(super) enum Connection {
    Single(ConnectionManager),
    Sentinel(SentinelConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Sentinel(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Sentinel(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

pub(super) fn unavailable(error: redis::RedisError) -> Unavailable {
    // The URL (with credentials) never goes into the message: only the error kind and detail,
    // or for an I/O error (a refused connection, an untrusted certificate) the error itself,
    // which names neither.
    let detail = match error.detail() {
        Some(detail) => detail.to_owned(),
        None if error.is_io_error() => error.to_string(),
        None => String::new(),
    };
    Unavailable::Redis {
        kind: error.kind(),
        detail,
    }
}

/// A connection to the store `info` and `topology` describe, over TLS trusting `ca_bundle`
/// (PEM; none: the system's roots) where the URL or the sentinels use TLS, each command
/// answered within `timeout`, and where the deny list's subscription should follow (none in
/// a cluster: its copy is not kept there, as loading it would scan every primary; each check
/// asks the cluster, correct and one round trip).
pub(super) async fn connect(
    info: &ConnectionInfo,
    topology: Option<&RedisTopology>,
    ca_bundle: Option<&str>,
    timeout: Duration,
) -> Result<(Connection, Option<Source>), Unavailable> {
    // The data nodes' TLS follows the URL's scheme; only then do their roots apply.
    let data_tls = tls_mode(info.addr());
    let data_roots = data_tls.and(roots(ca_bundle));
    Ok(match topology {
        None => {
            let client = match data_roots {
                Some(roots) => redis::Client::build_with_tls(info.clone(), roots),
                None => redis::Client::open(info.clone()),
            }
            .map_err(unavailable)?;
            let config = ConnectionManagerConfig::new().set_response_timeout(Some(timeout));
            let manager = ConnectionManager::new_with_config(client.clone(), config)
                .await
                .map_err(unavailable)?;
            (
                Connection::Single(manager),
                Some(Source::Server(Box::new(client))),
            )
        }
        Some(RedisTopology::Sentinel {
            master_name,
            addresses,
            username,
            password,
            tls,
        }) => {
            let sentinels = addresses
                .iter()
                .map(|a| address(a, *tls))
                .collect::<Result<Vec<_>, _>>()?;
            let data = info.redis_settings();
            let mut builder =
                SentinelClientBuilder::new(sentinels, master_name, SentinelServerType::Master)
                    .map_err(unavailable)?
                    .set_client_to_redis_db(data.db());
            if let Some(mode) = data_tls {
                builder = builder.set_client_to_redis_tls_mode(mode);
            }
            if let Some(roots) = data_roots {
                builder = builder.set_client_to_redis_certificates(roots);
            }
            if let Some(user) = data.username() {
                builder = builder.set_client_to_redis_username(user);
            }
            if let Some(password) = data.password() {
                builder = builder.set_client_to_redis_password(password);
            }
            if *tls {
                builder = builder.set_client_to_sentinel_tls_mode(TlsMode::Secure);
                if let Some(roots) = roots(ca_bundle) {
                    builder = builder.set_client_to_sentinel_certificates(roots);
                }
            }
            if let Some(user) = username {
                builder = builder.set_client_to_sentinel_username(user);
            }
            if let Some(password) = password {
                builder = builder.set_client_to_sentinel_password(&password.0);
            }
            let config = AsyncConnectionConfig::new().set_response_timeout(Some(timeout));
            let sentinels = builder.build().map_err(unavailable)?;
            let connection = SentinelConnection::connect(sentinels, config, data.db())
                .await
                .map_err(unavailable)?;
            let source = Source::Sentinel(connection.clone());
            (Connection::Sentinel(connection), Some(source))
        }
        Some(RedisTopology::Cluster { nodes }) => {
            let seeds = nodes
                .iter()
                .map(|n| Ok(info.clone().set_addr(address(n, data_tls.is_some())?)))
                .collect::<Result<Vec<_>, Unavailable>>()?;
            let mut builder = ClusterClientBuilder::new(seeds).response_timeout(timeout);
            if let Some(roots) = data_roots {
                builder = builder.certs(roots);
            }
            let client = builder.build().map_err(unavailable)?;
            let connection = client.get_async_connection().await.map_err(unavailable)?;
            (Connection::Cluster(connection), None)
        }
    })
}

/// The roots `ca_bundle` names for TLS connections, instead of the system's.
fn roots(ca_bundle: Option<&str>) -> Option<TlsCertificates> {
    ca_bundle.map(|pem| TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.as_bytes().to_vec()),
    })
}

/// The address of `host:port`, over TLS or not.
fn address(host_port: &str, tls: bool) -> Result<ConnectionAddr, Unavailable> {
    let parsed = host_port
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_owned(), port.parse().ok()?)));
    let Some((host, port)) = parsed else {
        return Err(Unavailable::Address(host_port.to_owned()));
    };
    Ok(if tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    })
}

/// The TLS mode of a URL's address: none for `redis://`.
fn tls_mode(addr: &ConnectionAddr) -> Option<TlsMode> {
    match addr {
        ConnectionAddr::TcpTls { insecure: true, .. } => Some(TlsMode::Insecure),
        ConnectionAddr::TcpTls { .. } => Some(TlsMode::Secure),
        _ => None,
    }
}
