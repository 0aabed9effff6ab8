//! Who may do what: bearer tokens mapped to identities with a role and a scope, loaded
//! from a TOML file. Tokens are compared by SHA-256 and never logged.
//!
//! ```toml
//! [[identity]]
//! id = "staff-tianlun-hotline"
//! role = "staff"               # resident | staff | partner | courier | operator
//! community = "tianlun"        # staff, resident, courier: their community
//! token_sha256 = "9f86d0..."   # or, for development only, token = "..."
//!
//! [[identity]]
//! id = "resident-0301"
//! role = "resident"
//! community = "tianlun"
//! household = "tianlun-b07-u8-0301"
//! token = "dev-resident"
//!
//! [[identity]]
//! id = "yonghui"
//! role = "partner"
//! partner = "yonghui"
//! token = "dev-yonghui"
//! ```

use std::collections::HashMap;
use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Resident,
    Staff,
    Partner,
    Courier,
    Operator,
}

/// One caller, as the access file describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub id: String,
    pub role: Role,
    #[serde(default)]
    pub community: Option<String>,
    #[serde(default)]
    pub household: Option<String>,
    #[serde(default)]
    pub partner: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    #[serde(default)]
    identity: Vec<Identity>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("cannot read access file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("access file {path} is invalid: {message}")]
    Invalid { path: String, message: String },
}

/// Every identity, by the SHA-256 of its token.
#[derive(Debug, Clone, Default)]
pub struct Access {
    by_token_hash: HashMap<String, Identity>,
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Access {
    pub fn load(path: &Path) -> Result<Access, AccessError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AccessError::Read {
            path: display.clone(),
            source,
        })?;
        Access::parse(&text).map_err(|message| AccessError::Invalid {
            path: display,
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Access, String> {
        let file: AccessFile = toml::from_str(text).map_err(|error| error.to_string())?;
        let mut by_token_hash = HashMap::new();
        for identity in file.identity {
            let hash = match (&identity.token, &identity.token_sha256) {
                (Some(token), None) => sha256_hex(token),
                (None, Some(hash)) => hash.to_ascii_lowercase(),
                _ => {
                    return Err(format!(
                        "identity {} needs exactly one of token and token_sha256",
                        identity.id
                    ));
                }
            };
            let needs = |field: &Option<String>, name: &str| {
                field.as_ref().map(|_| ()).ok_or_else(|| {
                    format!(
                        "identity {} ({:?}) needs {name}",
                        identity.id, identity.role
                    )
                })
            };
            match identity.role {
                Role::Resident => {
                    needs(&identity.community, "community")?;
                    needs(&identity.household, "household")?;
                }
                Role::Staff | Role::Courier => needs(&identity.community, "community")?,
                Role::Partner => needs(&identity.partner, "partner")?,
                Role::Operator => {}
            }
            if by_token_hash.insert(hash, identity).is_some() {
                return Err("two identities share a token".to_owned());
            }
        }
        Ok(Access { by_token_hash })
    }

    fn find(&self, token: &str) -> Option<&Identity> {
        self.by_token_hash.get(&sha256_hex(token))
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

/// Anything the router state can hand the access table out of.
pub trait HasAccess {
    fn access(&self) -> &Access;
}

impl<S> FromRequestParts<S> for Caller
where
    S: HasAccess + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let identity = state.access().find(token).ok_or(ApiError::Unauthorized)?;
        Ok(Caller(identity.clone()))
    }
}

impl Caller {
    pub fn forbidden(&self, what: &str) -> ApiError {
        ApiError::Forbidden(format!(
            "{} {} may not {what}",
            role_name(self.0.role),
            self.0.id
        ))
    }

    pub fn is(&self, role: Role) -> bool {
        self.0.role == role
    }

    /// Staff and residents of the community, couriers of it, and operators.
    pub fn sees_community(&self, community: &str) -> bool {
        match self.0.role {
            Role::Operator => true,
            Role::Staff | Role::Courier | Role::Resident => {
                self.0.community.as_deref() == Some(community)
            }
            Role::Partner => false,
        }
    }

    /// May act for this household (order, cancel): its resident, staff of its community.
    /// Operators read everything and act for nobody.
    pub fn acts_for_household(&self, community: &str, household: &str) -> bool {
        match self.0.role {
            Role::Staff => self.0.community.as_deref() == Some(community),
            Role::Resident => self.0.household.as_deref() == Some(household),
            Role::Operator | Role::Partner | Role::Courier => false,
        }
    }

    /// May read a community's staff views (checkpoint, escalations, campaigns, coverage):
    /// its staff, and operators.
    pub fn reads_community(&self, community: &str) -> bool {
        self.is(Role::Operator) || (self.is(Role::Staff) && self.sees_community(community))
    }

    /// May read this household's orders: whoever acts for it, and operators.
    pub fn reads_household(&self, community: &str, household: &str) -> bool {
        self.is(Role::Operator) || self.acts_for_household(community, household)
    }

    pub fn is_partner(&self, partner: &str) -> bool {
        self.0.role == Role::Partner && self.0.partner.as_deref() == Some(partner)
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Resident => "resident",
        Role::Staff => "staff",
        Role::Partner => "partner",
        Role::Courier => "courier",
        Role::Operator => "operator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_scopes() {
        let access = Access::parse(
            r#"
            [[identity]]
            id = "r1"
            role = "resident"
            community = "tianlun"
            household = "h1"
            token = "secret-1"

            [[identity]]
            id = "yonghui"
            role = "partner"
            partner = "yonghui"
            token_sha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
            "#,
        )
        .expect("parses");
        assert_eq!(access.find("secret-1").expect("known").id, "r1");
        assert_eq!(access.find("secret").expect("by hash").id, "yonghui");
        assert!(access.find("nope").is_none());
        assert!(
            Access::parse("[[identity]]\nid = \"x\"\nrole = \"partner\"\ntoken = \"t\"\n").is_err(),
            "partner needs its partner"
        );
        assert!(
            Access::parse("[[identity]]\nid = \"x\"\nrole = \"operator\"\n").is_err(),
            "a token is required"
        );
    }
}
