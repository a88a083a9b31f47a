//! The simulated Search API's GraphQL front: a query is parsed and validated against a typed
//! schema (`search.graphql`) by apollo-compiler, as a real GraphQL server does before it runs
//! anything, so a string literal for an enum input, an unknown field or argument, or a
//! missing `from` is refused with the server's own message. What passes is handed to the
//! resolver as fields with their arguments as JSON (enum values as their names).
//! Fragments and directives are refused: the simulator answers only what it can faithfully.

use std::sync::OnceLock;

use apollo_compiler::executable::{Selection, SelectionSet};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ast, ExecutableDocument, Schema};
use serde_json::{Map, Number, Value};

/// The schema's text, also the reference for what the simulated Search API accepts.
pub const SCHEMA: &str = include_str!("search.graphql");

/// One selected field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The key it is answered under (the alias, else the name).
    pub key: String,
    /// The field's name.
    pub name: String,
    /// Its arguments.
    pub args: Map<String, Value>,
    /// Its subfields.
    pub selection: Vec<Field>,
}

fn schema() -> Result<&'static Valid<Schema>, String> {
    static SCHEMA_CELL: OnceLock<Result<Valid<Schema>, String>> = OnceLock::new();
    SCHEMA_CELL
        .get_or_init(|| {
            Schema::parse_and_validate(SCHEMA, "search.graphql")
                .map_err(|e| format!("the simulator's Search schema is invalid: {}", e.errors))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Parses and validates a query document; `Ok` holds its operation's top-level fields, `Err`
/// the validation messages (each one a GraphQL error of the answer).
pub fn parse(query: &str, variables: &Map<String, Value>) -> Result<Vec<Field>, String> {
    parse_all(query, variables).map_err(|errors| errors.join("; "))
}

/// [`parse`], with every message apart.
pub fn parse_all(query: &str, variables: &Map<String, Value>) -> Result<Vec<Field>, Vec<String>> {
    let schema = schema().map_err(|e| vec![e])?;
    let doc =
        ExecutableDocument::parse_and_validate(schema, query, "query.graphql").map_err(|e| {
            e.errors
                .iter()
                .map(|d| d.to_json().message)
                .collect::<Vec<_>>()
        })?;
    let op = doc
        .operations
        .get(None)
        .map_err(|e| vec![e.message().to_string()])?;
    if op.operation_type != ast::OperationType::Query {
        return Err(vec![format!(
            "only queries are supported, not '{}'",
            op.operation_type
        )]);
    }
    if !doc.fragments.is_empty() || !op.directives.is_empty() {
        return Err(vec!["fragments and directives are not supported".into()]);
    }
    fields(&op.selection_set, variables).map_err(|e| vec![e])
}

fn fields(set: &SelectionSet, vars: &Map<String, Value>) -> Result<Vec<Field>, String> {
    set.selections
        .iter()
        .map(|s| match s {
            Selection::Field(f) if f.directives.is_empty() => {
                let args = f
                    .arguments
                    .iter()
                    .map(|a| Ok((a.name.to_string(), value(&a.value, vars)?)))
                    .collect::<Result<Map<_, _>, String>>()?;
                Ok(Field {
                    key: f.response_key().to_string(),
                    name: f.name.to_string(),
                    args,
                    selection: fields(&f.selection_set, vars)?,
                })
            }
            _ => Err("fragments and directives are not supported".into()),
        })
        .collect()
}

/// A validated literal as JSON: enum values become their names, `$variables` their values.
fn value(v: &ast::Value, vars: &Map<String, Value>) -> Result<Value, String> {
    Ok(match v {
        ast::Value::Null => Value::Null,
        ast::Value::Enum(name) => Value::String(name.to_string()),
        ast::Value::Variable(name) => vars.get(name.as_str()).cloned().unwrap_or(Value::Null),
        ast::Value::String(s) => Value::String(s.clone()),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Int(i) => {
            let text = i.as_str();
            match text.parse::<i64>() {
                Ok(n) => Value::Number(n.into()),
                Err(_) => return Err(format!("'{text}' is out of range for Long")),
            }
        }
        ast::Value::Float(f) => f
            .try_to_f64()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("'{}' is not a number", f.as_str()))?,
        ast::Value::List(items) => Value::Array(
            items
                .iter()
                .map(|i| value(i, vars))
                .collect::<Result<_, _>>()?,
        ),
        ast::Value::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.to_string(), value(v, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schema_is_valid() {
        schema().unwrap();
    }

    #[test]
    fn parses_a_search_query_with_aliases_filters_and_variables() {
        let q = r#"query Tasks($cursor: String) {
          # comment
          taskDetails(from: 1700000000000, to: 1700086400000,
            filter: {and: [{channelType: {equals: telephony}}, {origin: {match: "\\+1555.*"}}]},
            pagination: {cursor: $cursor}) {
            tasks { id gv_0: stringGlobalVariables(name: "Tier") { name value } lastQueue { name } }
            pageInfo { hasNextPage endCursor }
          }
        }"#;
        let vars = json!({"cursor": "0"});
        let fields = parse(q, vars.as_object().unwrap()).unwrap();
        assert_eq!(fields.len(), 1);
        let root = &fields[0];
        assert_eq!(root.name, "taskDetails");
        assert_eq!(root.args["from"], json!(1_700_000_000_000i64));
        assert_eq!(
            root.args["filter"],
            json!({"and": [{"channelType": {"equals": "telephony"}}, {"origin": {"match": "\\+1555.*"}}]})
        );
        assert_eq!(root.args["pagination"], json!({"cursor": "0"}));
        let tasks = &root.selection[0];
        assert_eq!(tasks.selection[1].key, "gv_0");
        assert_eq!(tasks.selection[1].name, "stringGlobalVariables");
        assert_eq!(tasks.selection[1].args["name"], json!("Tier"));
        assert_eq!(tasks.selection[2].selection[0].name, "name");
    }

    #[test]
    fn every_cisco_sample_filter_form_validates() {
        let none = Map::new();
        for filter in [
            r#"{and: [{channelType: {equals: telephony}} {status: {equals: "created"}} {owner: {equals: {id: "owner-id"}}}]}"#,
            r"{owner: {notequals: {id: null}}}",
            r#"{lastTeam: {name: {equals: "team1"}}}"#,
            r"{and: [{totalDuration: {lte: 120000}} {totalDuration: {gte: 60000}}]}",
            r"{isActive: {equals: false}}",
            r#"{stringGlobalVariables: {name: {equals: "VIPCustomer"}, value: {equals: "YES"}}}"#,
        ] {
            let q = format!("{{ taskDetails(from: 1, to: 2, filter: {filter}) {{ tasks {{ id }} pageInfo {{ hasNextPage }} }} }}");
            parse(&q, &none).unwrap_or_else(|e| panic!("{filter}: {e}"));
        }
    }

    #[test]
    fn refuses_what_a_typed_server_refuses() {
        let none = Map::new();
        let refused = |q: &str| parse(q, &none).unwrap_err();
        let e = refused(
            r#"{ taskDetails(from: 1, to: 2, filter: {channelType: {equals: "telephony"}}) { tasks { id } } }"#,
        );
        assert!(e.contains("ChannelType"), "a quoted enum: {e}");
        let e = refused(r"{ taskDetails(from: 1, to: 2) { tasks { idd } } }");
        assert!(e.contains("idd"), "an unknown field: {e}");
        let e = refused(r"{ taskDetails(to: 2) { tasks { id } } }");
        assert!(e.contains("from"), "a missing argument: {e}");
        assert!(
            refused("mutation { x }").contains("mutation") || !refused("mutation { x }").is_empty()
        );
        assert!(!refused(
            "{ task(from: 1, to: 2) { ...F } } fragment F on TaskDetails { tasks { id } }"
        )
        .is_empty());
        assert!(!refused("{ task(from: ) { id } }").is_empty());
        assert!(!refused("{ task { id }").is_empty());
    }
}
