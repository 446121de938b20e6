//! The scopes of the appliance's API (documented in `docs/security.md`). A scope is an enum,
//! not a string, so a route cannot ask for a scope that does not exist.

use std::fmt;

use crate::AuthorityError;

/// One API scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// Submit scans.
    ScannerScan,
    /// Read scans, SBOMs, reports.
    ScannerRead,
    /// Change policies and waivers.
    PolicyWrite,
    /// Record VEX statements.
    VexWrite,
    /// Import offline kits.
    KitImport,
    /// Ask the signer for signatures (DPoP with server nonce required).
    SignerSign,
    /// Administer clients, users and the audit log.
    Admin,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 7] = [
        Scope::ScannerScan,
        Scope::ScannerRead,
        Scope::PolicyWrite,
        Scope::VexWrite,
        Scope::KitImport,
        Scope::SignerSign,
        Scope::Admin,
    ];

    /// The scope's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScannerScan => "scanner.scan",
            Self::ScannerRead => "scanner.read",
            Self::PolicyWrite => "policy.write",
            Self::VexWrite => "vex.write",
            Self::KitImport => "kit.import",
            Self::SignerSign => "signer.sign",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = AuthorityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| AuthorityError::InvalidRequest(format!("unknown scope {s:?}")))
    }
}

/// A set of scopes, written on the wire as a space-separated list (RFC 6749 §3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// A set from scopes; duplicates are removed and the order is canonical.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut scopes: Vec<Scope> = scopes.into_iter().collect();
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    /// Parses a space-separated list; an unknown scope is an error naming it.
    pub fn parse(list: &str) -> Result<Self, AuthorityError> {
        let scopes = list
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(scopes))
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// The subset of `requested` that this set allows; `None` requested means all of this set.
    /// A requested scope outside this set is an error naming it.
    pub fn grant(&self, requested: Option<&ScopeSet>) -> Result<ScopeSet, AuthorityError> {
        match requested {
            None => Ok(self.clone()),
            Some(requested) => {
                if let Some(extra) = requested.iter().find(|s| !self.contains(*s)) {
                    return Err(AuthorityError::InvalidRequest(format!(
                        "scope {extra} is not allowed for this client"
                    )));
                }
                Ok(requested.clone())
            }
        }
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_scopes() {
        let set = ScopeSet::parse("admin scanner.read  admin").unwrap();
        assert_eq!(set.to_string(), "scanner.read admin");
        let err = ScopeSet::parse("scanner.read root")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"root\""), "{err}");
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
    }

    #[test]
    fn grant_never_widens() {
        let allowed = ScopeSet::parse("scanner.read scanner.scan").unwrap();
        let asked = ScopeSet::parse("scanner.read").unwrap();
        assert_eq!(allowed.grant(Some(&asked)).unwrap(), asked);
        assert_eq!(allowed.grant(None).unwrap(), allowed);
        let wider = ScopeSet::parse("admin").unwrap();
        assert!(allowed.grant(Some(&wider)).is_err());
    }
}
