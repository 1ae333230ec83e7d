//! The snapshot's clients, held once and found by client_id.
//!
//! At 100,000 clients a map from id to a copy of each client doubled the STS's memory; a list
//! sorted by id and searched by halves holds each client once, costs no index, and finds one
//! of 100,000 in 17 string comparisons (well under a microsecond beside a signature).

use signet_crds::snapshot::Client;

/// Clients sorted by client_id, ids unique.
#[derive(Debug, Default)]
pub struct Clients(Vec<Client>);

impl Clients {
    /// Sorts `clients` by id (the compiler writes them sorted; a reader does not rely on it).
    /// Of two clients with one id, which the compiler never writes, the first is kept.
    pub fn new(mut clients: Vec<Client>) -> Self {
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        clients.dedup_by(|later, earlier| later.client_id == earlier.client_id);
        clients.shrink_to_fit();
        Self(clients)
    }

    /// The client with this id.
    pub fn get(&self, client_id: &str) -> Option<&Client> {
        self.0
            .binary_search_by(|c| c.client_id.as_str().cmp(client_id))
            .ok()
            .map(|i| &self.0[i])
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every client, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.0.iter()
    }
}

/// `clients["id"]`, for tests and callers that checked the id before: panics when absent.
impl std::ops::Index<&str> for Clients {
    type Output = Client;

    fn index(&self, client_id: &str) -> &Client {
        self.get(client_id)
            .unwrap_or_else(|| panic!("no client {client_id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client of the examples under another id, named after it.
    fn client(id: &str, name: &str) -> Client {
        let loaded = crate::testing::examples("clients");
        let mut c = loaded
            .clients
            .iter()
            .next()
            .expect("examples have clients")
            .clone();
        c.client_id = id.to_owned();
        c.name = name.to_owned();
        c
    }

    #[test]
    fn finds_each_id_whatever_order_they_came_in_and_nothing_else() {
        let ids = ["m", "a", "z", "default.b", "default.a", "k"];
        let clients = Clients::new(ids.iter().map(|id| client(id, id)).collect());
        for id in ids {
            assert_eq!(clients.get(id).map(|c| c.name.as_str()), Some(id));
        }
        for absent in ["", "b", "default.", "zz", "default.c"] {
            assert!(clients.get(absent).is_none(), "{absent}");
        }
        assert_eq!(clients.len(), ids.len());
        let sorted: Vec<_> = clients.iter().map(|c| c.client_id.as_str()).collect();
        assert!(sorted.is_sorted());
    }

    #[test]
    fn of_two_clients_with_one_id_the_first_is_kept() {
        let clients = Clients::new(vec![client("a", "first"), client("a", "second")]);
        assert_eq!(clients.len(), 1);
        assert_eq!(clients["a"].name, "first");
    }
}
