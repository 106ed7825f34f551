//! Private state: data a resource keeps with its state that the user never
//! sees (bookkeeping such as "this object was imported"). Stored by the CLI
//! as opaque bytes; we keep JSON keys so several parts can share it.

use std::collections::BTreeMap;

/// A resource's private data, keyed by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrivateState(BTreeMap<String, serde_json::Value>);

impl PrivateState {
    /// Parse the bytes the CLI kept; empty or unreadable bytes give an empty
    /// state (private data from another provider version is not an error
    /// worth blocking a plan for).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        if bytes.is_empty() {
            return Self::default();
        }
        match serde_json::from_slice(bytes) {
            Ok(map) => PrivateState(map),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable private state");
                Self::default()
            }
        }
    }

    /// The bytes to hand back to the CLI; empty when there is nothing.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.0.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&self.0).unwrap_or_default()
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.get(key)
    }

    /// Set `key` to `value`.
    pub fn set(&mut self, key: &str, value: serde_json::Value) {
        self.0.insert(key.to_owned(), value);
    }

    /// Remove `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_garbage() {
        let mut p = PrivateState::default();
        assert!(p.to_bytes().is_empty());
        p.set("imported", serde_json::Value::Bool(true));
        let again = PrivateState::from_bytes(&p.to_bytes());
        assert_eq!(again, p);
        assert_eq!(PrivateState::from_bytes(b"\x00not json"), PrivateState::default());
    }
}
