//! The snapshot as Secrets, the format the operator writes and the STS reads: gzip of the
//! JSON, split into shards when one Secret would pass ~900 KiB (a Secret holds at most 1 MiB),
//! every shard carrying the same hash. One definition for both sides (and the benchmarks that
//! write a snapshot without an operator).

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::snapshot::Wire;

/// Largest payload per Secret, leaving room for metadata under the 1 MiB limit.
pub const SHARD_BYTES: usize = 900 * 1024;
/// Data key of the (part of the) compressed snapshot.
pub const DATA_KEY: &str = "snapshot.json.gz";
/// Annotation with the snapshot's content hash, on every shard.
pub const HASH_ANNOTATION: &str = "signet.dev/snapshot-hash";
/// Annotation with the snapshot's schema version.
pub const SCHEMA_ANNOTATION: &str = "signet.dev/schema-version";
/// Annotation `index/count` of a shard.
pub const SHARD_ANNOTATION: &str = "signet.dev/shard";
/// Label that marks Secrets holding a snapshot, valued with the TokenService's name.
pub const SNAPSHOT_LABEL: &str = "signet.dev/snapshot-of";
/// Most shards an STS reads: 8 × 900 KiB of gzip, room for well over 100,000 clients (about
/// 5 MB of gzip). The STS's Role names each of these Secrets, so the count is fixed.
pub const MAX_SHARDS: usize = 8;

/// One Secret to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Secret name.
    pub name: String,
    /// Its payload.
    pub bytes: Vec<u8>,
    /// `index/count`.
    pub position: String,
}

/// The Secret names an STS for `token_service` reads (and its RBAC grants by resourceNames).
pub fn secret_names(token_service: &str) -> Vec<String> {
    std::iter::once(format!("{token_service}-snapshot"))
        .chain((0..MAX_SHARDS).map(|i| format!("{token_service}-snapshot-{i}")))
        .collect()
}

/// The annotations of `shard` of `wire`: its hash, schema version and position.
pub fn annotations(wire: &Wire, shard: &Shard) -> BTreeMap<String, String> {
    BTreeMap::from([
        (HASH_ANNOTATION.to_owned(), wire.hash.clone()),
        (
            SCHEMA_ANNOTATION.to_owned(),
            wire.schema_version().unwrap_or_default(),
        ),
        (SHARD_ANNOTATION.to_owned(), shard.position.clone()),
    ])
}

/// The compressed JSON. Deterministic: the same snapshot gives the same bytes, so an
/// unchanged snapshot is recognised by comparing bytes, and a Secret edited by hand differs.
pub fn compress(json: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::new(6));
    gz.write_all(json).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// The Secrets for `token_service`'s compressed snapshot: `<name>-snapshot` when it fits in
/// one, else `<name>-snapshot-0 .. -N-1`.
pub fn shards(token_service: &str, bytes: &[u8], limit: usize) -> Vec<Shard> {
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![bytes]
    } else {
        bytes.chunks(limit).collect()
    };
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| Shard {
            name: if count == 1 {
                format!("{token_service}-snapshot")
            } else {
                format!("{token_service}-snapshot-{i}")
            },
            bytes: chunk.to_vec(),
            position: format!("{i}/{count}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_snapshot_is_one_secret() {
        let s = shards("signet", &[1, 2, 3], SHARD_BYTES);
        assert_eq!(
            s,
            vec![Shard {
                name: "signet-snapshot".into(),
                bytes: vec![1, 2, 3],
                position: "0/1".into()
            }]
        );
    }

    #[test]
    fn large_snapshot_is_split_into_fixed_names_that_join_back() {
        let bytes: Vec<u8> = (0..25u8).collect();
        let s = shards("signet", &bytes, 10);
        let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "signet-snapshot-0",
                "signet-snapshot-1",
                "signet-snapshot-2"
            ]
        );
        assert_eq!(s[2].position, "2/3");
        assert_eq!(
            s.iter().flat_map(|s| s.bytes.clone()).collect::<Vec<_>>(),
            bytes
        );
    }
}
