//! [`Genesis`]: the initial balances that define a network, and [`NetworkId`], their hash.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hex::hex_newtype;
use crate::{Account, Tokens};

/// Domain separator of the genesis hash.
const GENESIS_DOMAIN: &[u8] = b"micro-ledger/genesis/v1\0";

/// The identity of one network: the sha256 of its genesis' canonical encoding. Every transfer
/// carries it, so a transfer signed for one network is rejected by every other.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetworkId(pub [u8; 32]);

hex_newtype!(NetworkId, 32);

/// Why a genesis is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The JSON did not parse; serde_json's message names the field, line and column.
    #[error("invalid genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `network_name` is empty.
    #[error("genesis network_name is empty")]
    EmptyName,
    /// `network_name` is longer than [`Genesis::MAX_NAME_BYTES`].
    #[error("genesis network_name is {len} bytes, at most {max} allowed")]
    NameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An account is listed twice in `accounts`.
    #[error("genesis lists account {0} more than once")]
    DuplicateAccount(Account),
    /// The amounts add up to more than `u64::MAX`.
    #[error("genesis amounts add up to more than {} tokens", u64::MAX)]
    SupplyOverflow,
}

/// The initial state of a network: its name, the treasury that collects fees, and the initial
/// balances. The total supply is the sum of those balances and never changes afterwards.
///
/// JSON form (unknown fields are rejected):
/// `{"network_name": "micro-dev", "treasury": "<64 hex>", "accounts": [["<64 hex>", 1000]]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Human name of the network; 1 to [`Genesis::MAX_NAME_BYTES`] bytes. Part of the
    /// [`NetworkId`], so two networks with the same balances but different names are distinct.
    pub network_name: String,
    /// The account every transfer fee is credited to.
    pub treasury: Account,
    /// Initial balances; each account at most once, in any order (the hash sorts them).
    pub accounts: Vec<(Account, Tokens)>,
}

impl Genesis {
    /// Longest `network_name`, in bytes.
    pub const MAX_NAME_BYTES: usize = 64;

    /// Parses and validates a genesis JSON document.
    pub fn from_json(json: &str) -> Result<Genesis, GenesisError> {
        let genesis: Genesis = serde_json::from_str(json)?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// This genesis as pretty JSON, the form [`Genesis::from_json`] reads.
    pub fn to_json(&self) -> Result<String, GenesisError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Checks the name, duplicate accounts and supply overflow; returns the total supply.
    pub fn validate(&self) -> Result<Tokens, GenesisError> {
        if self.network_name.is_empty() {
            return Err(GenesisError::EmptyName);
        }
        if self.network_name.len() > Self::MAX_NAME_BYTES {
            return Err(GenesisError::NameTooLong {
                len: self.network_name.len(),
                max: Self::MAX_NAME_BYTES,
            });
        }
        let mut seen = BTreeSet::new();
        let mut supply = Tokens::ZERO;
        for (account, amount) in &self.accounts {
            if !seen.insert(*account) {
                return Err(GenesisError::DuplicateAccount(*account));
            }
            supply = supply
                .checked_add(*amount)
                .ok_or(GenesisError::SupplyOverflow)?;
        }
        Ok(supply)
    }

    /// The total supply: the sum of the initial balances.
    pub fn total_supply(&self) -> Result<Tokens, GenesisError> {
        self.validate()
    }

    /// The sha256 of the canonical encoding: domain || name length (u16 BE) || name ||
    /// treasury || account count (u64 BE) || (account || amount BE) sorted by account.
    pub fn network_id(&self) -> NetworkId {
        let mut accounts = self.accounts.clone();
        accounts.sort();
        let mut h = Sha256::new();
        h.update(GENESIS_DOMAIN);
        // Names longer than u16::MAX are rejected by `validate`; saturate rather than wrap.
        h.update(
            u16::try_from(self.network_name.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        h.update(self.network_name.as_bytes());
        h.update(self.treasury.0);
        h.update((accounts.len() as u64).to_be_bytes());
        for (account, amount) in &accounts {
            h.update(account.0);
            h.update(amount.0.to_be_bytes());
        }
        NetworkId(h.finalize().into())
    }

    /// A genesis for local development and tests: network `micro-local-dev`, the given
    /// balances, and [`Genesis::local_dev_treasury`] as treasury.
    pub fn local_dev(accounts: impl IntoIterator<Item = (Account, Tokens)>) -> Genesis {
        Genesis {
            network_name: "micro-local-dev".to_owned(),
            treasury: Self::local_dev_treasury(),
            accounts: accounts.into_iter().collect(),
        }
    }

    /// The treasury of [`Genesis::local_dev`]: the public key of the well-known secret
    /// sha256("micro-ledger/local-dev/treasury"). Anyone can spend from it, so it is for local
    /// networks only.
    pub fn local_dev_treasury() -> Account {
        Account::from(&Self::local_dev_treasury_key())
    }

    /// The signing key of [`Genesis::local_dev_treasury`] (local networks and tests only).
    pub fn local_dev_treasury_key() -> ed25519_dalek::SigningKey {
        let seed: [u8; 32] = Sha256::digest(b"micro-ledger/local-dev/treasury").into();
        ed25519_dalek::SigningKey::from_bytes(&seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Genesis {
        Genesis {
            network_name: "test".into(),
            treasury: Account([9; 32]),
            accounts: vec![
                (Account([1; 32]), Tokens(10)),
                (Account([2; 32]), Tokens(20)),
            ],
        }
    }

    #[test]
    fn json_round_trip_and_supply() {
        let g = sample();
        let json = g.to_json().unwrap_or_default();
        let back = Genesis::from_json(&json).ok();
        assert_eq!(back.as_ref(), Some(&g));
        assert_eq!(g.total_supply().ok(), Some(Tokens(30)));
    }

    #[test]
    fn network_id_ignores_account_order_but_not_content() {
        let g = sample();
        let mut reordered = g.clone();
        reordered.accounts.reverse();
        assert_eq!(g.network_id(), reordered.network_id());
        let mut renamed = g.clone();
        renamed.network_name = "other".into();
        assert_ne!(g.network_id(), renamed.network_id());
        let mut richer = g.clone();
        richer.accounts[0].1 = Tokens(11);
        assert_ne!(g.network_id(), richer.network_id());
    }

    #[test]
    fn unknown_field_is_named() {
        let json = r#"{"network_name":"x","treasury":"00","accounts":[],"extra":1}"#;
        // The treasury is invalid too; serde reports the first problem it meets, with position.
        let err = Genesis::from_json(json)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
        let json = format!(
            r#"{{"network_name":"x","treasury":"{}","accounts":[],"extra":1}}"#,
            "00".repeat(32)
        );
        let err = Genesis::from_json(&json)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `extra`"), "{err}");
    }

    #[test]
    fn invalid_genesis_errors() {
        let mut g = sample();
        g.accounts.push((Account([1; 32]), Tokens(1)));
        assert!(matches!(
            g.validate(),
            Err(GenesisError::DuplicateAccount(_))
        ));
        let mut g = sample();
        g.accounts[0].1 = Tokens(u64::MAX);
        assert!(matches!(g.validate(), Err(GenesisError::SupplyOverflow)));
        let mut g = sample();
        g.network_name.clear();
        assert!(matches!(g.validate(), Err(GenesisError::EmptyName)));
        g.network_name = "n".repeat(65);
        assert!(matches!(
            g.validate(),
            Err(GenesisError::NameTooLong { .. })
        ));
    }
}
