//! The optional bearer token: with [`Config::token`](super::Config::token) set (`lsmdb serve
//! --token`, or env `LSMDB_TOKEN`), every route but `/health` needs
//! `Authorization: Bearer <token>`.

use tiny_http::Request;

use super::error::Error;
use super::http::HttpError;

/// The secret clients must present. Its `Debug` form does not show it.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// An empty token would let anyone in who sends `Bearer ` and is surely a mistake (an
    /// unset variable expanded in a script), so it is refused at start-up.
    pub fn new(token: &str) -> Result<Token, Error> {
        if token.is_empty() {
            return Err(Error::InvalidConfig("the token must not be empty".into()));
        }
        Ok(Token(token.as_bytes().to_vec()))
    }

    /// Checks the request's `Authorization` header; 401 with a JSON error when it is missing
    /// or wrong, and the `WWW-Authenticate` challenge of RFC 6750 (added by the caller).
    pub(super) fn check(&self, request: &Request) -> Result<(), HttpError> {
        let header = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str());
        let Some(value) = header else {
            return Err(HttpError::new(
                401,
                "missing Authorization header (expected \"Bearer <token>\")",
            ));
        };
        let presented = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => {
                return Err(HttpError::new(
                    401,
                    "the Authorization header must be \"Bearer <token>\"",
                ));
            }
        };
        if constant_time_eq(&self.0, presented.as_bytes()) {
            Ok(())
        } else {
            Err(HttpError::new(401, "invalid token"))
        }
    }
}

/// Compares without an early exit, so the time taken does not tell an attacker how many
/// leading bytes of a guess were right. The time depends only on the length of the real
/// token; a guess of another length is compared against zeros and fails on the length.
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != presented.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ presented.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_needs_every_byte_and_the_length() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret\0"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b""));
        assert!(Token::new("").is_err());
        assert_eq!(format!("{:?}", Token::new("secret").unwrap()), "Token(..)");
    }
}
