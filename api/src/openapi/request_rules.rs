//! The rules the server applies to every JSON request body at its edge (`ApiJson`,
//! `api/src/extract.rs`), stated on the request schemas of the document, where clients and
//! schemathesis can see them:
//!
//! * unknown fields are refused at any depth: `additionalProperties: false` on every object,
//!   including the domain types a request embeds (which stay tolerant as event payloads, so the
//!   event schemas do not get this);
//! * no string holds NUL: a `pattern` excluding U+0000;
//! * every string is at most [`MAX_TEXT_CHARS`] characters (`maxLength`), except under the paths
//!   the request type names in [`BodyText::LONG_TEXT`] (code and prompts);
//! * unsigned integers have their real maximum (see [`unsigned_width`]);
//! * no query parameter holds NUL (`ApiQuery` refuses it).
//!
//! Each request type is listed once in [`bodies`], with its `LONG_TEXT` read from the same trait
//! the extractor reads; a unit test fails when an operation's body is not listed.

use std::collections::BTreeMap;

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, Object, Schema, SchemaFormat, SchemaType,
};
use utoipa::openapi::{OpenApi, RefOr, Type};
use utoipa::Number;
use utoipa::{Modify, ToSchema};

use crate::extract::{BodyText, MAX_TEXT_CHARS};

/// A string without NUL (U+0000), which PostgreSQL cannot store.
pub const NO_NUL: &str = "^[^\\u0000]*$";

/// Applies the edge rules to every request body schema.
pub struct RequestRules;

/// Every JSON request body type: its schema name and the paths whose strings may be long.
pub fn bodies() -> BTreeMap<String, &'static [&'static str]> {
    fn body<T: ToSchema + BodyText>() -> (String, &'static [&'static str]) {
        (T::name().into_owned(), T::LONG_TEXT)
    }
    use crate::routes::{
        assessments, candidate, face_models, integrity, members, reviews, runs, sessions, telemetry,
    };
    BTreeMap::from([
        body::<members::NewMember>(),
        body::<assessments::NewAssessment>(),
        body::<sessions::NewInvite>(),
        body::<sessions::RevokeAccess>(),
        body::<sessions::ExtraTime>(),
        body::<candidate::Consent>(),
        body::<candidate::Withdrawal>(),
        body::<candidate::Submission>(),
        body::<runs::RunRequest>(),
        body::<telemetry::TelemetryBatch>(),
        body::<integrity::RerunRequest>(),
        body::<integrity::NewIntegritySettings>(),
        body::<face_models::NewFaceModel>(),
        body::<reviews::AssignReviewers>(),
        body::<reviews::NewScore>(),
        body::<reviews::NewComment>(),
        body::<reviews::NewResolution>(),
        body::<reviews::NewDecision>(),
    ])
}

/// The schema names of the operations' JSON request bodies.
pub fn request_body_names(openapi: &OpenApi) -> Vec<String> {
    let mut names = Vec::new();
    for item in openapi.paths.paths.values() {
        for operation in [&item.get, &item.put, &item.post, &item.delete, &item.patch]
            .into_iter()
            .flatten()
        {
            let schema = operation
                .request_body
                .as_ref()
                .and_then(|body| body.content.get("application/json"))
                .and_then(|content| content.schema.as_ref());
            if let Some(RefOr::Ref(r)) = schema {
                names.push(component_name(&r.ref_location).to_string());
            }
        }
    }
    names
}

fn component_name(location: &str) -> &str {
    location.rsplit('/').next().unwrap_or(location)
}

/// What a walk found that the rules cannot state: components reached both where strings are
/// bounded and where they are long (they would need inlining). Empty when all is well.
pub fn conflicts(openapi: &mut OpenApi) -> Vec<String> {
    walk(openapi)
}

impl Modify for RequestRules {
    fn modify(&self, openapi: &mut OpenApi) {
        // Conflicts are reported by a unit test; the document states what it can.
        walk(openapi);
        query_text(openapi);
    }
}

/// No query parameter holds NUL (`ApiQuery` refuses it): stated on every free-text one.
fn query_text(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        for operation in super::common_responses::operations(item) {
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.parameter_in != ParameterIn::Query {
                    continue;
                }
                if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut() {
                    if is_string(&object.schema_type)
                        && object.format.is_none()
                        && object.enum_values.is_none()
                        && object.pattern.is_none()
                    {
                        object.pattern = Some(NO_NUL.to_string());
                    }
                }
            }
        }
    }
}

/// Applies the rules from every request body; returns the conflicts.
fn walk(openapi: &mut OpenApi) -> Vec<String> {
    let bodies = bodies();
    let roots = request_body_names(openapi);
    let Some(components) = openapi.components.as_mut() else {
        return Vec::new();
    };
    // A component reached below a request type is long or bounded as a whole.
    let mut seen: BTreeMap<String, bool> = BTreeMap::new();
    let mut conflicts = Vec::new();
    let mut pending: Vec<(String, Reach)> = Vec::new();
    for root in roots {
        let long = bodies.get(&root).copied().unwrap_or_default();
        if let Some(RefOr::T(schema)) = components.schemas.get_mut(&root) {
            constrain(schema, "", &Text::Paths(long), &mut pending, &mut conflicts);
        }
    }
    while let Some((name, reach)) = pending.pop() {
        let long = matches!(reach, Reach::Long);
        match seen.get(&name) {
            Some(&was) if was != long => {
                conflicts.push(format!(
                    "{name} is reached both where strings are long and where they are bounded"
                ));
                continue;
            }
            Some(_) => continue,
            None => {
                seen.insert(name.clone(), long);
            }
        }
        if let Some(RefOr::T(schema)) = components.schemas.get_mut(&name) {
            constrain(schema, "", &Text::Whole(long), &mut pending, &mut conflicts);
        }
    }
    conflicts
}

/// How a component was reached.
enum Reach {
    Long,
    Bounded,
}

/// Which strings of the schema being walked may be long.
enum Text<'a> {
    /// A request type: the strings under these paths (`.`-separated, relative to it).
    Paths(&'a [&'a str]),
    /// A component: all of them, or none.
    Whole(bool),
}

impl Text<'_> {
    /// Whether the strings at `path` may be long; `None` when only some below it may.
    fn long_at(&self, path: &str) -> Option<bool> {
        match self {
            Text::Whole(long) => Some(*long),
            Text::Paths(paths) => {
                if paths
                    .iter()
                    .any(|p| path == *p || path.starts_with(&format!("{p}.")))
                {
                    Some(true)
                } else if paths.iter().any(|p| p.starts_with(&format!("{path}."))) {
                    None
                } else {
                    Some(false)
                }
            }
        }
    }
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_string()
    } else {
        format!("{path}.{segment}")
    }
}

/// Applies the rules to `schema` at `path`; queues the components it refers to.
fn constrain(
    schema: &mut Schema,
    path: &str,
    text: &Text,
    pending: &mut Vec<(String, Reach)>,
    conflicts: &mut Vec<String>,
) {
    let mut follow = |item: &mut RefOr<Schema>, path: &str| match item {
        RefOr::Ref(r) => {
            let name = component_name(&r.ref_location).to_string();
            match text.long_at(path) {
                Some(true) => pending.push((name, Reach::Long)),
                Some(false) => pending.push((name, Reach::Bounded)),
                None => conflicts.push(format!(
                    "{name} at `{path}` holds both long and bounded strings; inline it"
                )),
            }
        }
        RefOr::T(inner) => constrain(inner, path, text, pending, conflicts),
    };
    match schema {
        Schema::Object(object) => {
            if is_string(&object.schema_type)
                && object.format.is_none()
                && object.enum_values.is_none()
            {
                if object.pattern.is_none() {
                    object.pattern = Some(NO_NUL.to_string());
                }
                if text.long_at(path) == Some(false)
                    && object.max_length.is_none_or(|max| max > MAX_TEXT_CHARS)
                {
                    object.max_length = Some(MAX_TEXT_CHARS);
                }
            }
            if is_integer(&object.schema_type) {
                unsigned_width(object);
            }
            if !object.properties.is_empty() && object.additional_properties.is_none() {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
            for (name, property) in object.properties.iter_mut() {
                follow(property, &join(path, name));
            }
            if let Some(additional) = object.additional_properties.as_deref_mut() {
                if let AdditionalProperties::RefOr(value) = additional {
                    follow(value, &join(path, "*"));
                }
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                follow(items, &join(path, "*"));
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(|i| follow(i, path)),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(|i| follow(i, path)),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(|i| follow(i, path)),
        _ => {}
    }
}

/// utoipa writes `u32` as `int32` and `u64` as `int64`, each with `minimum: 0`: widths the
/// server's unsigned types exceed (it accepts 2^31 for a `u32`, 2^63 for a `u64`). States the
/// real maximum instead, unless the field declares its own.
fn unsigned_width(object: &mut Object) {
    let unsigned = matches!(object.minimum, Some(Number::Int(0) | Number::UInt(0)))
        || matches!(object.minimum, Some(Number::Float(f)) if f == 0.0);
    if !unsigned || object.maximum.is_some() {
        return;
    }
    match &object.format {
        Some(SchemaFormat::KnownFormat(KnownFormat::Int32)) => {
            object.format = Some(SchemaFormat::KnownFormat(KnownFormat::Int64));
            object.maximum = Some(Number::UInt(u32::MAX as usize));
        }
        Some(SchemaFormat::KnownFormat(KnownFormat::Int64)) => {
            object.format = None;
            object.maximum = Some(Number::UInt(u64::MAX as usize));
        }
        _ => {}
    }
}

fn is_integer(schema_type: &SchemaType) -> bool {
    match schema_type {
        SchemaType::Type(t) => *t == Type::Integer,
        SchemaType::Array(types) => types.contains(&Type::Integer),
        SchemaType::AnyValue => false,
    }
}

fn is_string(schema_type: &SchemaType) -> bool {
    match schema_type {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(types) => types.contains(&Type::String),
        SchemaType::AnyValue => false,
    }
}
