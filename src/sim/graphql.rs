//! Just enough GraphQL for the simulated Search API: one operation, fields with aliases,
//! arguments and selection sets; values are literals (strings, numbers, booleans, null,
//! enums, lists, objects) or `$variables`. Fragments and directives are refused: the
//! simulator should fail loudly on a query it cannot answer faithfully.

use serde_json::{Map, Number, Value};

/// One selected field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The key it is answered under (the alias, else the name).
    pub key: String,
    pub name: String,
    pub args: Map<String, Value>,
    pub selection: Vec<Field>,
}

/// Parses a query document into its operation's top-level fields.
pub fn parse(query: &str, variables: &Map<String, Value>) -> Result<Vec<Field>, String> {
    let mut p = Parser {
        s: query.as_bytes(),
        at: 0,
        vars: variables,
    };
    p.skip();
    if p.peek() != Some(b'{') {
        let op = p.name()?;
        if op != "query" {
            return Err(format!("only queries are supported, not '{op}'"));
        }
        p.skip();
        if p.peek().is_some_and(is_name_start) {
            p.name()?;
        }
        p.skip();
        if p.eat(b'(') {
            // Variable definitions: their types do not matter here, only their values.
            let mut depth = 1;
            while depth > 0 {
                match p.next() {
                    Some(b'(') => depth += 1,
                    Some(b')') => depth -= 1,
                    Some(_) => {}
                    None => return Err("unterminated variable definitions".into()),
                }
            }
        }
    }
    let fields = p.selection()?;
    p.skip();
    match p.peek() {
        None => Ok(fields),
        Some(c) => Err(p.error(&format!("unexpected '{}' after the operation", c as char))),
    }
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    vars: &'a Map<String, Value>,
}

impl Parser<'_> {
    fn error(&self, msg: &str) -> String {
        format!("Syntax error at offset {}: {msg}", self.at)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    /// Skips white space, commas (insignificant in GraphQL) and `#` comments.
    fn skip(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.at += 1,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.at += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", c as char)))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.skip();
        let start = self.at;
        if !self.peek().is_some_and(is_name_start) {
            return Err(self.error("expected a name"));
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.at += 1;
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    fn selection(&mut self) -> Result<Vec<Field>, String> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        while !self.eat(b'}') {
            self.skip();
            if matches!(self.peek(), Some(b'.') | Some(b'@')) {
                return Err(self.error("fragments and directives are not supported"));
            }
            fields.push(self.field()?);
        }
        Ok(fields)
    }

    fn field(&mut self) -> Result<Field, String> {
        let first = self.name()?;
        let (key, name) = if self.eat(b':') {
            (first, self.name()?)
        } else {
            (first.clone(), first)
        };
        let mut args = Map::new();
        if self.eat(b'(') {
            while !self.eat(b')') {
                let arg = self.name()?;
                self.expect(b':')?;
                args.insert(arg, self.value()?);
            }
        }
        self.skip();
        let selection = if self.peek() == Some(b'{') {
            self.selection()?
        } else {
            Vec::new()
        };
        Ok(Field {
            key,
            name,
            args,
            selection,
        })
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip();
        match self.peek() {
            Some(b'$') => {
                self.at += 1;
                let var = self.name()?;
                Ok(self.vars.get(&var).cloned().unwrap_or(Value::Null))
            }
            Some(b'"') => self.string().map(Value::String),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                while !self.eat(b']') {
                    items.push(self.value()?);
                }
                Ok(Value::Array(items))
            }
            Some(b'{') => {
                self.at += 1;
                let mut obj = Map::new();
                while !self.eat(b'}') {
                    let k = self.name()?;
                    self.expect(b':')?;
                    obj.insert(k, self.value()?);
                }
                Ok(Value::Object(obj))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number(),
            Some(c) if is_name_start(c) => Ok(match self.name()?.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                other => Value::String(other.to_string()), // an enum value
            }),
            _ => Err(self.error("expected a value")),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.at += 1;
        }
        let text = String::from_utf8_lossy(&self.s[start..self.at]);
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| self.error(&format!("'{text}' is not a number")))
    }

    /// A string literal; its escapes are JSON's, which GraphQL's are.
    fn string(&mut self) -> Result<String, String> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.next() {
                Some(b'\\') => {
                    self.next();
                }
                Some(b'"') => break,
                Some(_) => {}
                None => return Err(self.error("unterminated string")),
            }
        }
        serde_json::from_slice(&self.s[start..self.at])
            .map_err(|e| self.error(&format!("bad string literal: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn refuses_what_it_cannot_answer() {
        let none = Map::new();
        assert!(parse("mutation { x }", &none).is_err());
        assert!(parse("{ task { ...F } }", &none).is_err());
        assert!(parse("{ task(from: ) { id } }", &none).is_err());
        assert!(parse("{ task { id }", &none).is_err());
        assert!(parse("{ task { id } } }", &none).is_err());
    }
}
