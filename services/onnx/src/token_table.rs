//! A text encoder's token-embedding table, found in an ONNX file and
//! grown by extra rows: how textual-inversion vectors get token ids of
//! their own in any export that takes `input_ids` (the table is the
//! initializer that a `Gather` reads at the ids, after casts and
//! reshapes). The file is edited on the wire: every other byte of the
//! model is kept as it was.

use std::path::Path;

use crate::tensor::{
    self, FloatKind, TENSOR_DATA_TYPE, TENSOR_DIMS, TENSOR_NAME, TENSOR_RAW_DATA, tensor_name,
};
use crate::wire::{self, Field};

// Field numbers from onnx.proto.
const MODEL_GRAPH: u32 = 7;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_INPUT: u32 = 11;
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_OP_TYPE: u32 = 4;
const VALUE_INFO_NAME: u32 = 1;

/// Ops the ids may pass through on their way to the table's `Gather`.
const PASS_THROUGH: &[&str] = &[
    "Cast",
    "Reshape",
    "Identity",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
];

pub type TableType = FloatKind;

/// The table: `rows` x `width` values, little-endian, in its own type.
#[derive(Debug, Clone)]
pub struct TokenTable {
    pub name: String,
    pub rows: usize,
    pub width: usize,
    pub ty: TableType,
    data: Vec<u8>,
}

impl TokenTable {
    /// Row `i` as f32.
    pub fn row(&self, i: usize) -> Option<Vec<f32>> {
        (i < self.rows).then(|| {
            let size = self.ty.size();
            self.ty
                .decode(&self.data[i * self.width * size..(i + 1) * self.width * size])
        })
    }
}

struct Node<'a> {
    op: &'a str,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
}

fn node(bytes: &[u8]) -> Result<Node<'_>, String> {
    let f = wire::fields(bytes)?;
    let strings = |n| {
        f.iter()
            .filter(move |x| x.number == n)
            .filter_map(Field::string)
    };
    Ok(Node {
        op: strings(NODE_OP_TYPE).next().unwrap_or(""),
        inputs: strings(NODE_INPUT).collect(),
        outputs: strings(NODE_OUTPUT).collect(),
    })
}

fn model_graph<'a>(model: &'a [u8]) -> Result<(Vec<Field<'a>>, Vec<Field<'a>>), String> {
    let model_fields = wire::fields(model)?;
    let graph = model_fields
        .iter()
        .find(|f| f.number == MODEL_GRAPH)
        .and_then(Field::bytes)
        .ok_or("no graph in the model")?;
    let graph_fields = wire::fields(graph)?;
    Ok((model_fields, graph_fields))
}

/// The name of the initializer a `Gather` reads at the ids of graph input
/// `ids_input`.
fn table_name<'a>(graph: &[Field<'a>], ids_input: &str) -> Result<&'a str, String> {
    let nodes = graph
        .iter()
        .filter(|f| f.number == GRAPH_NODE)
        .filter_map(Field::bytes)
        .map(node)
        .collect::<Result<Vec<_>, _>>()?;
    let mut reach: Vec<&str> = vec![ids_input];
    for n in &nodes {
        if PASS_THROUGH.contains(&n.op) && n.inputs.first().is_some_and(|i| reach.contains(i)) {
            reach.extend(n.outputs.first());
        } else if n.op == "Gather" && n.inputs.get(1).is_some_and(|i| reach.contains(i)) {
            // Tied weights reach the Gather through Identity nodes.
            let mut name = n.inputs[0];
            while let Some(id) = nodes
                .iter()
                .find(|m| m.op == "Identity" && m.outputs.first() == Some(&name))
            {
                name = id.inputs.first().copied().unwrap_or(name);
            }
            // The interned copy lives in the graph bytes, not in `nodes`.
            return graph
                .iter()
                .filter(|f| f.number == GRAPH_INITIALIZER)
                .filter_map(Field::bytes)
                .filter_map(|t| wire::fields(t).ok())
                .find_map(|t| tensor_name(&t).filter(|&t| t == name))
                .ok_or_else(|| {
                    format!("the token table {name:?} that input {ids_input:?} reads is not an initializer")
                });
        }
    }
    Err(format!(
        "no Gather reads a table at input {ids_input:?} (no token-embedding table found)"
    ))
}

fn parse_table(tensor: &[Field<'_>], name: &str, folder: &Path) -> Result<TokenTable, String> {
    let (dims, ty) = tensor::header(tensor, name)?;
    let [rows, width] = dims[..] else {
        return Err(format!(
            "token table {name:?} has dims {dims:?}, expected 2"
        ));
    };
    let data = tensor::values(tensor, name, folder)?;
    Ok(TokenTable {
        name: name.to_string(),
        rows,
        width,
        ty,
        data,
    })
}

/// Finds and reads the token-embedding table. `folder` is where external
/// data files are looked up (the model's folder).
pub fn read(model: &[u8], folder: &Path, ids_input: &str) -> Result<TokenTable, String> {
    let (_, graph) = model_graph(model)?;
    let name = table_name(&graph, ids_input)?;
    let tensor = graph
        .iter()
        .filter(|f| f.number == GRAPH_INITIALIZER)
        .filter_map(Field::bytes)
        .map(wire::fields)
        .find(|t| t.as_ref().is_ok_and(|t| tensor_name(t) == Some(name)))
        .expect("found by table_name")?;
    parse_table(&tensor, name, folder)
}

/// The model with `extra` rows (row-major, `width` each) appended to its
/// token table, which is written inline; returns it with the table's
/// first new id (its old row count).
pub fn append_rows(
    model: &[u8],
    folder: &Path,
    ids_input: &str,
    extra: &[f32],
) -> Result<(Vec<u8>, usize), String> {
    let table = read(model, folder, ids_input)?;
    if !extra.len().is_multiple_of(table.width) {
        return Err(format!(
            "{} values are not whole rows of {}",
            extra.len(),
            table.width
        ));
    }
    let added = extra.len() / table.width;
    let mut data = table.data.clone();
    data.extend(table.ty.encode(extra));
    let mut tensor = vec![];
    wire::put_varint_field(&mut tensor, TENSOR_DIMS, (table.rows + added) as u64);
    wire::put_varint_field(&mut tensor, TENSOR_DIMS, table.width as u64);
    wire::put_varint_field(&mut tensor, TENSOR_DATA_TYPE, table.ty.onnx_type());
    wire::put_bytes_field(&mut tensor, TENSOR_NAME, table.name.as_bytes());
    wire::put_bytes_field(&mut tensor, TENSOR_RAW_DATA, &data);
    drop(data);

    let (model_fields, graph_fields) = model_graph(model)?;
    let mut graph = Vec::with_capacity(model.len() + tensor.len());
    for f in &graph_fields {
        let bytes = f.bytes().unwrap_or_default();
        let is_table = f.number == GRAPH_INITIALIZER
            && wire::fields(bytes).is_ok_and(|t| tensor_name(&t) == Some(&table.name));
        // Older exports also list initializers as inputs, with the old shape.
        let is_table_input = f.number == GRAPH_INPUT
            && wire::fields(bytes).is_ok_and(|v| {
                v.iter()
                    .find(|x| x.number == VALUE_INFO_NAME)
                    .and_then(Field::string)
                    == Some(&table.name)
            });
        if is_table {
            wire::put_bytes_field(&mut graph, GRAPH_INITIALIZER, &tensor);
        } else if !is_table_input {
            graph.extend_from_slice(f.encoded);
        }
    }
    let mut out = Vec::with_capacity(graph.len() + 1024);
    for f in &model_fields {
        if f.number == MODEL_GRAPH {
            wire::put_bytes_field(&mut out, MODEL_GRAPH, &graph);
        } else {
            out.extend_from_slice(f.encoded);
        }
    }
    Ok((out, table.rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{
        ENTRY_KEY, ENTRY_VALUE, ONNX_FLOAT, TENSOR_DATA_LOCATION, TENSOR_EXTERNAL_DATA,
    };
    use crate::wire::{put_bytes_field, put_varint_field};

    fn node(op: &str, inputs: &[&str], output: &str) -> Vec<u8> {
        let mut n = vec![];
        for i in inputs {
            put_bytes_field(&mut n, NODE_INPUT, i.as_bytes());
        }
        put_bytes_field(&mut n, NODE_OUTPUT, output.as_bytes());
        put_bytes_field(&mut n, NODE_OP_TYPE, op.as_bytes());
        n
    }

    /// ids -> Cast -> Gather(table), the table's 3 x 2 f32 values stored
    /// after 8 bytes of another tensor in an external file.
    fn model_with_external_table(dir: &Path) -> Vec<u8> {
        let values: [f32; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut file = vec![0u8; 8];
        file.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(dir.join("weights.bin"), file).unwrap();

        let mut tensor = vec![];
        put_varint_field(&mut tensor, TENSOR_DIMS, 3);
        put_varint_field(&mut tensor, TENSOR_DIMS, 2);
        put_varint_field(&mut tensor, TENSOR_DATA_TYPE, ONNX_FLOAT);
        put_bytes_field(&mut tensor, TENSOR_NAME, b"emb.weight");
        for (k, v) in [
            ("location", "weights.bin"),
            ("offset", "8"),
            ("length", "24"),
        ] {
            let mut entry = vec![];
            put_bytes_field(&mut entry, ENTRY_KEY, k.as_bytes());
            put_bytes_field(&mut entry, ENTRY_VALUE, v.as_bytes());
            put_bytes_field(&mut tensor, TENSOR_EXTERNAL_DATA, &entry);
        }
        put_varint_field(&mut tensor, TENSOR_DATA_LOCATION, 1);

        let mut graph = vec![];
        put_bytes_field(
            &mut graph,
            GRAPH_NODE,
            &node("Cast", &["input_ids"], "ids64"),
        );
        put_bytes_field(
            &mut graph,
            GRAPH_NODE,
            &node("Gather", &["emb.weight", "ids64"], "hidden"),
        );
        put_bytes_field(&mut graph, GRAPH_INITIALIZER, &tensor);
        let mut model = vec![];
        put_varint_field(&mut model, 1, 8); // ir_version, kept as it was
        put_bytes_field(&mut model, MODEL_GRAPH, &graph);
        model
    }

    #[test]
    fn finds_an_external_table_through_a_cast_and_grows_it_inline() {
        let dir = std::env::temp_dir().join(format!("token-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let model = model_with_external_table(&dir);
        let table = read(&model, &dir, "input_ids").unwrap();
        assert_eq!(
            (table.name.as_str(), table.rows, table.width),
            ("emb.weight", 3, 2)
        );
        assert_eq!(table.row(1), Some(vec![3.0, 4.0]));
        assert_eq!(table.row(3), None);

        let (grown, first) = append_rows(&model, &dir, "input_ids", &[7.0, 8.0]).unwrap();
        assert_eq!(first, 3);
        let again = read(&grown, &dir, "input_ids").unwrap();
        assert_eq!(again.rows, 4);
        assert_eq!(again.row(0), Some(vec![1.0, 2.0]));
        assert_eq!(again.row(3), Some(vec![7.0, 8.0]));
        // The other model field is kept byte for byte.
        assert_eq!(&grown[..2], &model[..2]);

        assert!(
            read(&model, &dir, "other_input")
                .unwrap_err()
                .contains("no Gather")
        );
        assert!(
            append_rows(&model, &dir, "input_ids", &[1.0]).is_err(),
            "half a row"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
