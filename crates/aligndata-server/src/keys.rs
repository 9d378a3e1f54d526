//! API keys: 32 random bytes shown once, stored only as their SHA-256, with scopes.
//!
//! Why a plain hash and not a slow password hash: the key is 256 bits of randomness, so there is
//! nothing to brute-force; a fast hash lets every request authenticate with one indexed lookup.

use std::collections::BTreeSet;
use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every key starts with this, so a leaked key is recognisable in logs and secret scanners.
pub const KEY_PREFIX: &str = "adk_";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Record turns and feedback, ask the policy for an arm.
    Ingest,
    /// Read statistics and recent feedback.
    Read,
    /// Everything; reserved for administration endpoints.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes; `admin` implies the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Parses `ingest,read` (commas, spaces tolerated). Errors name the unknown scope.
    pub fn parse(list: &str) -> Result<Scopes, String> {
        let mut set = BTreeSet::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match Scope::parse(part) {
                Some(scope) => {
                    set.insert(scope);
                }
                None => {
                    return Err(format!(
                        "unknown scope `{part}` (known: ingest, read, admin)"
                    ));
                }
            }
        }
        if set.is_empty() {
            return Err("no scopes given (known: ingest, read, admin)".into());
        }
        Ok(Scopes(set))
    }

    /// Whether a key with these scopes may act with `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.0.contains(&scope) || self.0.contains(&Scope::Admin)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Scopes {
        Scopes(scopes.into_iter().collect())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

/// A fresh key: `adk_` + 64 hex digits of OS randomness.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// What the database stores for a key: hex SHA-256 of the whole key string.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_stably() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn scopes_parse_and_admin_implies_all() {
        let s = Scopes::parse("ingest, read").expect("parse");
        assert!(s.allows(Scope::Ingest) && s.allows(Scope::Read) && !s.allows(Scope::Admin));
        assert_eq!(s.to_string(), "ingest,read");
        let admin = Scopes::parse("admin").expect("parse");
        assert!(admin.allows(Scope::Read));
        assert!(Scopes::parse("ingest,write").unwrap_err().contains("write"));
        assert!(Scopes::parse("").is_err());
    }
}
