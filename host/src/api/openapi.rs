//! The OpenAPI 3.1 document of the API, hand-written next to the routes in
//! `openapi.json` and served at `/flowstudio/api/openapi.json`. A test checks
//! that it lists exactly the routes of [`route_table`](super::route_table),
//! with the right security per route, so the two cannot drift apart.

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use super::super::{route_table, Access};
    use std::collections::BTreeSet;

    fn document() -> serde_json::Value {
        serde_json::from_str(super::DOCUMENT).expect("openapi.json parses")
    }

    #[test]
    fn the_document_lists_exactly_the_routes_of_the_router() {
        let doc = document();
        assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("path item").iter().filter(|(k, _)| *k != "parameters") {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> =
            route_table().iter().map(|r| (r.verb.as_str().to_string(), r.path.to_string())).collect();
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(missing.is_empty(), "routes missing from openapi.json: {missing:?}");
        assert!(extra.is_empty(), "openapi.json documents routes the router does not serve: {extra:?}");
    }

    #[test]
    fn security_matches_each_route_and_every_reference_resolves() {
        let doc = document();
        for route in route_table() {
            let op = &doc["paths"][route.path][route.verb.as_str()];
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            assert_eq!(public, route.access == Access::Public, "{} {}: security", route.verb.as_str(), route.path);
            assert!(op["responses"].is_object(), "{} {}: responses", route.verb.as_str(), route.path);
            assert!(op["operationId"].is_string(), "{} {}: operationId", route.verb.as_str(), route.path);
            if route.access == Access::Admin {
                for status in ["401", "403"] {
                    assert!(op["responses"][status].is_object(), "{} {} documents {status}", route.verb.as_str(), route.path);
                }
            }
            // Every `{param}` in the path is declared.
            for param in route.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
                let item = &doc["paths"][route.path];
                let declared = [&item["parameters"], &op["parameters"]]
                    .iter()
                    .filter_map(|p| p.as_array())
                    .flatten()
                    .any(|p| p["name"] == param && p["in"] == "path");
                assert!(declared, "{} {}: path parameter `{param}` is not declared", route.verb.as_str(), route.path);
            }
        }
        let text = super::DOCUMENT;
        for reference in text.split("\"$ref\": \"#/").skip(1) {
            let pointer = reference.split('"').next().expect("ref");
            assert!(doc.pointer(&format!("/{pointer}")).is_some(), "dangling $ref #/{pointer}");
        }
    }
}
