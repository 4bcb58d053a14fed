//! `crds/` must be exactly what the code generates, and every field must explain itself.

use std::path::PathBuf;

use nauthera_shared::crds::crd_files;

/// Where the repository keeps the generated CRDs: `crds/`, and the Helm chart's copy.
fn crd_dirs() -> [PathBuf; 2] {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        root.join("crds"),
        root.join("charts/nauthera-operator/files/crds"),
    ]
}

#[test]
fn crds_folders_are_up_to_date() {
    for dir in crd_dirs() {
        for (name, expected) in crd_files() {
            let path = dir.join(name);
            let actual = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                actual == expected,
                "{} is stale or missing: run `cargo run -p nauthera-operator -- crds --dir crds --dir charts/nauthera-operator/files/crds` and commit the result",
                path.display()
            );
        }
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut generated: Vec<String> = crd_files()
            .into_iter()
            .map(|(name, _)| name.to_owned())
            .collect();
        generated.sort();
        assert_eq!(
            on_disk,
            generated,
            "{} holds files the generator does not write",
            dir.display()
        );
    }
}

/// Walks a schema and collects the paths of properties without a description.
fn undocumented(schema: &serde_json::Value, path: &str, found: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, property) in properties {
            let field = format!("{path}.{name}");
            if property.get("description").is_none() {
                found.push(field.clone());
            }
            undocumented(property, &field, found);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(items, &format!("{path}[]"), found);
    }
}

#[test]
fn every_field_has_a_description_for_kubectl_explain() {
    for (name, yaml) in crd_files() {
        let crd: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert!(
            schema.get("description").is_some(),
            "{name}: the kind has no description"
        );
        let mut found = Vec::new();
        for part in ["spec", "status"] {
            undocumented(&schema["properties"][part], part, &mut found);
        }
        assert!(
            found.is_empty(),
            "{name}: fields without a description: {found:?}"
        );
    }
}

#[test]
fn crds_use_only_what_kubernetes_1_24_accepts() {
    for (name, yaml) in crd_files() {
        let crd: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(crd["apiVersion"], "apiextensions.k8s.io/v1", "{name}");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(
            version["subresources"]["status"],
            serde_json::json!({}),
            "{name}: status subresource"
        );
        // CEL rules (x-kubernetes-validations) are beta only from 1.25; selectable fields from 1.30.
        for newer in ["x-kubernetes-validations", "selectableFields"] {
            assert!(
                !yaml.contains(newer),
                "{name} uses {newer}, which Kubernetes 1.24 refuses"
            );
        }
        // A structural schema has no $ref, and no oneOf/anyOf/allOf carrying types.
        for forbidden in ["$ref", "oneOf", "anyOf", "allOf"] {
            assert!(
                !yaml.contains(forbidden),
                "{name} uses {forbidden}: not a structural schema"
            );
        }
        assert!(
            !crd["spec"]["names"]["shortNames"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{name}: short name"
        );
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|column| column["name"].as_str().unwrap())
            .collect();
        assert!(columns.contains(&"Age"), "{name}: {columns:?}");
    }
}
