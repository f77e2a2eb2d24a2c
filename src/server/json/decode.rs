//! JSON request bodies decoded field by field into the few shapes lsmdb takes, never
//! into a `serde_json::Value` tree: a tree costs tens of bytes per element, so a 14 MB batch
//! of 2.1M tiny entries once took 648 MB. Strings are borrowed from the body when they hold
//! no escapes, arrays of strings go into one buffer, and unknown fields are skipped unbuilt,
//! so a body costs about its own size again. Errors name the field at fault.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Strings (or nulls) stored one after another in one buffer: an entry costs its bytes and
/// 5 more, where a `Vec<Vec<u8>>` costs about 40 more and a JSON tree more still.
#[derive(Debug, Default)]
pub struct Column {
    bytes: Vec<u8>,
    ends: Vec<u32>,
    null: Vec<bool>,
}

impl Column {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The entries in order, `None` for a null.
    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .zip(&self.null)
            .map(|((start, &end), &null)| {
                (!null).then(|| &self.bytes[start as usize..end as usize])
            })
    }

    fn push(&mut self, entry: Option<&str>) -> Result<(), String> {
        self.push_bytes(entry.map(str::as_bytes))
    }

    pub(in crate::server) fn push_bytes(&mut self, entry: Option<&[u8]>) -> Result<(), String> {
        self.bytes.extend_from_slice(entry.unwrap_or_default());
        let end = u32::try_from(self.bytes.len())
            .map_err(|_| "the strings of a request body must total under 4 GiB".to_string())?;
        self.ends.push(end);
        self.null.push(entry.is_none());
        Ok(())
    }
}

/// The fields lsmdb reads from a JSON body; any other field is skipped unbuilt. A
/// string is borrowed from the input when it has no escapes.
#[derive(Debug, Default)]
pub struct BodyFields<'de> {
    pub key: Option<Cow<'de, str>>,
    pub value: Option<Cow<'de, str>>,
    pub keys: Option<Column>,
    pub values: Option<Column>,
    /// How the body spells keys and values: absent for text, `"base64"`.
    pub encoding: Option<Cow<'de, str>>,
}

/// Decodes a JSON object body; `not_object` is the error when it is something else. Errors
/// say which field is wrong; a body that is not JSON at all is `malformed JSON: ...`.
pub fn decode_fields<'de>(body: &'de [u8], not_object: &str) -> Result<BodyFields<'de>, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let fields = ObjectSeed(not_object)
        .deserialize(&mut de)
        .and_then(|fields| de.end().map(|()| fields));
    fields.map_err(|e| {
        if !e.is_data() {
            return format!("malformed JSON: {e}");
        }
        // Our own message, without serde_json's " at line L column C".
        let at = format!(" at line {} column {}", e.line(), e.column());
        let message = e.to_string();
        message.strip_suffix(&at).unwrap_or(&message).to_string()
    })
}

struct ObjectSeed<'m>(&'m str);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = BodyFields<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Fails with `message`, for a JSON value of the wrong kind.
fn wrong_kind<T, E: de::Error>(message: impl fmt::Display) -> Result<T, E> {
    Err(E::custom(message))
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = BodyFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = BodyFields::default();
        while let Some(name) = map.next_key::<FieldName>()? {
            let string = |name| ScalarSeed.map_err(name, "must be a string");
            match name {
                FieldName::Key => fields.key = Some(map.next_value_seed(string("\"key\""))?),
                FieldName::Value => fields.value = Some(map.next_value_seed(string("\"value\""))?),
                FieldName::Keys => fields.keys = Some(map.next_value_seed(ColumnSeed::KEYS)?),
                FieldName::Values => fields.values = Some(map.next_value_seed(ColumnSeed::VALUES)?),
                FieldName::Encoding => {
                    fields.encoding = Some(map.next_value_seed(string("\"encoding\""))?)
                }
                FieldName::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        wrong_kind(self.0)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        wrong_kind(self.0)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        wrong_kind(self.0)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        wrong_kind(self.0)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        wrong_kind(self.0)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        wrong_kind(self.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        wrong_kind(self.0)
    }
}

/// A field name, matched without allocating.
enum FieldName {
    Key,
    Value,
    Keys,
    Values,
    Encoding,
    Other,
}

impl<'de> de::Deserialize<'de> for FieldName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(FieldNameVisitor)
    }
}

struct FieldNameVisitor;

impl Visitor<'_> for FieldNameVisitor {
    type Value = FieldName;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<FieldName, E> {
        Ok(match name {
            "key" => FieldName::Key,
            "value" => FieldName::Value,
            "keys" => FieldName::Keys,
            "values" => FieldName::Values,
            "encoding" => FieldName::Encoding,
            _ => FieldName::Other,
        })
    }
}

/// A JSON value where a string (or null) belongs; anything else is consumed unbuilt.
enum Scalar<'de> {
    Str(Cow<'de, str>),
    Null,
    Other,
}

struct ScalarSeed;

impl ScalarSeed {
    /// A seed for a field that must be a string: `"<name>" <rule>` otherwise.
    fn map_err(self, name: &'static str, rule: &'static str) -> StringSeed {
        StringSeed { name, rule }
    }
}

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// A field that must be a string.
struct StringSeed {
    name: &'static str,
    rule: &'static str,
}

impl<'de> DeserializeSeed<'de> for StringSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match ScalarSeed.deserialize(d)? {
            Scalar::Str(s) => Ok(s),
            Scalar::Null | Scalar::Other => wrong_kind(format_args!("{} {}", self.name, self.rule)),
        }
    }
}

/// An array of strings (`nullable`: or nulls), into a column.
struct ColumnSeed {
    name: &'static str,
    nullable: bool,
}

impl ColumnSeed {
    const KEYS: ColumnSeed = ColumnSeed {
        name: "keys",
        nullable: false,
    };
    const VALUES: ColumnSeed = ColumnSeed {
        name: "values",
        nullable: true,
    };

    fn not_array(&self) -> String {
        format!("\"{}\" must be an array of strings", self.name)
    }
}

impl<'de> DeserializeSeed<'de> for ColumnSeed {
    type Value = Column;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Column, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ColumnSeed {
    type Value = Column;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.not_array())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Column, A::Error> {
        let mut column = Column::default();
        while let Some(item) = seq.next_element_seed(ScalarSeed)? {
            let entry = match item {
                Scalar::Str(s) => Some(s),
                Scalar::Null if self.nullable => None,
                Scalar::Null | Scalar::Other => {
                    let or_null = if self.nullable { " or null" } else { "" };
                    let i = column.len();
                    return wrong_kind(format_args!(
                        "{}[{i}] must be a string{or_null}",
                        self.name
                    ));
                }
            };
            column.push(entry.as_deref()).map_err(de::Error::custom)?;
        }
        Ok(column)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Column, E> {
        wrong_kind(self.not_array())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Column, E> {
        wrong_kind(self.not_array())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Column, E> {
        wrong_kind(self.not_array())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Column, E> {
        wrong_kind(self.not_array())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Column, E> {
        wrong_kind(self.not_array())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Column, E> {
        wrong_kind(self.not_array())
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Column, A::Error> {
        wrong_kind(self.not_array())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str) -> Result<BodyFields<'_>, String> {
        decode_fields(body.as_bytes(), "not an object")
    }

    #[test]
    fn strings_are_borrowed_unless_escaped_and_other_fields_skipped() {
        let body = r#"{"x":{"deep":[[1],{"a":null}]},"key":"plain","value":"tab\there"}"#;
        let fields = decode(body).unwrap();
        assert!(matches!(fields.key, Some(Cow::Borrowed("plain"))));
        assert!(matches!(fields.value.as_deref(), Some("tab\there")));
        assert!(fields.keys.is_none() && fields.values.is_none());
    }

    #[test]
    fn columns_keep_entries_and_nulls_in_order() {
        let fields = decode(r#"{"keys":["a","","ü"],"values":["1",null,""]}"#).unwrap();
        let keys: Vec<_> = fields
            .keys
            .unwrap()
            .iter()
            .map(|k| k.unwrap().to_vec())
            .collect();
        assert_eq!(keys, [b"a".to_vec(), b"".to_vec(), "ü".as_bytes().to_vec()]);
        let values: Vec<_> = fields
            .values
            .unwrap()
            .iter()
            .map(|v| v.map(<[u8]>::to_vec))
            .collect();
        assert_eq!(values, [Some(b"1".to_vec()), None, Some(vec![])]);
    }

    #[test]
    fn errors_name_the_field_without_a_position() {
        for (body, message) in [
            ("[1]", "not an object"),
            ("\"s\"", "not an object"),
            (r#"{"key":7}"#, r#""key" must be a string"#),
            (r#"{"value":null}"#, r#""value" must be a string"#),
            (
                r#"{"keys":{"a":1}}"#,
                r#""keys" must be an array of strings"#,
            ),
            (r#"{"keys":["a",null]}"#, "keys[1] must be a string"),
            (
                r#"{"values":["a",[]]}"#,
                "values[1] must be a string or null",
            ),
        ] {
            assert_eq!(decode(body).err().as_deref(), Some(message), "{body}");
        }
        for bad in ["{", r#"{"key":"a"} x"#, ""] {
            assert!(
                decode(bad).unwrap_err().starts_with("malformed JSON: "),
                "{bad}"
            );
        }
    }
}
