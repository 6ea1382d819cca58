//! Where a torch export keeps each module's weight, and weights replaced
//! on the wire.
//!
//! torch's exporter names nodes after module paths
//! (`/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul`)
//! while a MatMul's weight is often an anonymous, pre-transposed
//! initializer (`onnx::MatMul_1234`, `[in, out]`); Gemm and Conv keep torch's
//! `[out, in, ...]`; ONNX Runtime's optimizer packs an attention's q, k and
//! v into one `Attention` weight (`[in, q | k | v]`) and names the node
//! after nothing, so that one is placed by the output projection it feeds.
//! [`index`] follows each weight input back through Transpose, Cast and
//! Identity to its initializer and says how its values are laid out;
//! [`replace`] rewrites chosen initializers to point into one in-memory
//! external data file, every other byte of the model kept.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::tensor::{
    self, ENTRY_KEY, ENTRY_VALUE, FloatKind, TENSOR_DATA_LOCATION, TENSOR_DATA_TYPE, TENSOR_DIMS,
    TENSOR_EXTERNAL_DATA, TENSOR_NAME, tensor_name,
};
use crate::wire::{self, Field};

const MODEL_GRAPH: u32 = 7;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_NAME: u32 = 3;
const NODE_OP_TYPE: u32 = 4;
const NODE_ATTRIBUTE: u32 = 5;
const ATTR_NAME: u32 = 1;
const ATTR_I: u32 = 3;
const ATTR_INTS: u32 = 8;
/// Tensor fields that hold values (float_data .. external_data,
/// data_location): what [`replace`] drops from a rewritten tensor.
const VALUE_FIELDS: &[u32] = &[4, 5, 6, 7, 9, 10, 11, 13, 14];

/// How a module's `[out, inner]` matrix (inner = in x kernel) sits in its
/// initializer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// torch's own `[out, in]` (Gemm with transB, or a MatMul through a Transpose).
    OutIn,
    /// Transposed, `[in, out]` (a MatMul's own weight).
    InOut,
    /// A convolution's `[out, in, kh, kw]`.
    Conv,
    /// Columns `start..start + out` of a packed `[in, total]` weight.
    Columns { start: usize, total: usize },
}

/// One module's weight in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleWeight {
    /// The dotted module path the node names spell (any wrapper modules of
    /// the export included).
    pub module: String,
    pub initializer: String,
    pub layout: Layout,
    /// The initializer's dims and type.
    pub dims: Vec<usize>,
    pub kind: FloatKind,
    /// The module's output features and input features times kernel.
    pub out: usize,
    pub inner: usize,
}

struct Node<'a> {
    name: &'a str,
    op: &'a str,
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
    attributes: Vec<Field<'a>>,
}

impl<'a> Node<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let f = wire::fields(bytes)?;
        let strings = |n| {
            f.iter()
                .filter(move |x| x.number == n)
                .filter_map(Field::string)
        };
        Ok(Self {
            name: strings(NODE_NAME).next().unwrap_or(""),
            op: strings(NODE_OP_TYPE).next().unwrap_or(""),
            inputs: strings(NODE_INPUT).collect(),
            outputs: strings(NODE_OUTPUT).collect(),
            attributes: f
                .iter()
                .filter(|x| x.number == NODE_ATTRIBUTE)
                .copied()
                .collect(),
        })
    }

    fn attribute(&self, name: &str) -> Option<Vec<Field<'a>>> {
        self.attributes
            .iter()
            .filter_map(Field::bytes)
            .filter_map(|b| wire::fields(b).ok())
            .find(|a| {
                a.iter()
                    .find(|x| x.number == ATTR_NAME)
                    .and_then(Field::string)
                    == Some(name)
            })
    }

    fn int(&self, name: &str) -> Option<u64> {
        self.attribute(name)?
            .iter()
            .find(|x| x.number == ATTR_I)
            .and_then(Field::varint)
    }

    fn ints(&self, name: &str) -> Option<Vec<u64>> {
        wire::repeated_varints(&self.attribute(name)?, ATTR_INTS).ok()
    }

    /// `/a/b.0/c/MatMul` -> `a.b.0.c`: the module path, the op's own name
    /// dropped.
    fn module(&self) -> Option<String> {
        let path = self.name.strip_prefix('/')?;
        let (module, _op) = path.rsplit_once('/')?;
        Some(module.replace('/', "."))
    }
}

fn graph_fields(model: &[u8]) -> Result<(Vec<Field<'_>>, Vec<Field<'_>>), String> {
    let model_fields = wire::fields(model)?;
    let graph = model_fields
        .iter()
        .find(|f| f.number == MODEL_GRAPH)
        .and_then(Field::bytes)
        .ok_or("no graph in the model")?;
    let graph_fields = wire::fields(graph)?;
    Ok((model_fields, graph_fields))
}

fn initializers<'a>(graph: &[Field<'a>]) -> Result<HashMap<&'a str, Vec<Field<'a>>>, String> {
    let mut out = HashMap::new();
    for t in graph
        .iter()
        .filter(|f| f.number == GRAPH_INITIALIZER)
        .filter_map(Field::bytes)
    {
        let fields = wire::fields(t)?;
        if let Some(name) = tensor_name(&fields) {
            out.insert(name, fields);
        }
    }
    Ok(out)
}

/// The initializer behind `input`, through Transpose (counted), Cast and
/// Identity nodes.
fn trace<'a>(
    input: &'a str,
    producers: &HashMap<&'a str, &Node<'a>>,
    inits: &HashMap<&'a str, Vec<Field<'a>>>,
) -> Option<(&'a str, bool)> {
    let (mut name, mut flipped) = (input, false);
    for _ in 0..8 {
        if inits.contains_key(name) {
            return Some((name, flipped));
        }
        let p = producers.get(name)?;
        match p.op {
            "Transpose" => flipped = !flipped,
            "Cast" | "Identity" => {}
            _ => return None,
        }
        name = p.inputs.first()?;
    }
    None
}

/// The module path of the first named MatMul/Gemm downstream of `start`
/// (within a few nodes).
fn downstream_module(start: &str, consumers: &HashMap<&str, Vec<&Node<'_>>>) -> Option<String> {
    let mut frontier = vec![start.to_string()];
    for _ in 0..6 {
        let mut next = vec![];
        for value in &frontier {
            for n in consumers.get(value.as_str()).into_iter().flatten() {
                if matches!(n.op, "MatMul" | "Gemm")
                    && let Some(m) = n.module()
                {
                    return Some(m);
                }
                next.extend(n.outputs.iter().map(|o| o.to_string()));
            }
        }
        frontier = next;
    }
    None
}

/// Every module weight a MatMul, Gemm, Conv or fused Attention node reads.
pub fn index(model: &[u8]) -> Result<Vec<ModuleWeight>, String> {
    let (_, graph) = graph_fields(model)?;
    let inits = initializers(&graph)?;
    let nodes = graph
        .iter()
        .filter(|f| f.number == GRAPH_NODE)
        .filter_map(Field::bytes)
        .map(Node::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let mut producers = HashMap::new();
    let mut consumers: HashMap<&str, Vec<&Node<'_>>> = HashMap::new();
    for n in &nodes {
        for o in &n.outputs {
            producers.insert(*o, n);
        }
        for i in &n.inputs {
            consumers.entry(*i).or_default().push(n);
        }
    }
    let mut out = vec![];
    for n in &nodes {
        let Some(weight) = n.inputs.get(1) else {
            continue;
        };
        let Some((init, flipped)) = trace(weight, &producers, &inits) else {
            continue;
        };
        let (dims, kind) = match tensor::header(&inits[init], init) {
            Ok(h) => h,
            Err(_) => continue, // not a float weight
        };
        let mut push = |module: String, layout: Layout, out_f: usize, inner: usize| {
            out.push(ModuleWeight {
                module,
                initializer: init.to_string(),
                layout,
                dims: dims.clone(),
                kind,
                out: out_f,
                inner,
            })
        };
        match (n.op, dims.as_slice()) {
            ("MatMul" | "Gemm", [a, b]) => {
                let Some(module) = n.module() else { continue };
                let transposed = (n.op == "Gemm" && n.int("transB") == Some(1)) != flipped;
                if transposed {
                    push(module, Layout::OutIn, *a, *b);
                } else {
                    push(module, Layout::InOut, *b, *a);
                }
            }
            ("Conv", [o, i, kh, kw]) if !flipped => {
                let Some(module) = n.module() else { continue };
                push(module, Layout::Conv, *o, i * kh * kw);
            }
            ("Attention", [input, total]) if !flipped => {
                // Placed by the output projection it feeds (`...attn1.to_out.0`).
                let Some(projection) = n
                    .outputs
                    .first()
                    .and_then(|o| downstream_module(o, &consumers))
                else {
                    continue;
                };
                let Some(attn) = projection.strip_suffix(".to_out.0") else {
                    continue;
                };
                let sizes = n
                    .ints("qkv_hidden_sizes")
                    .map(|s| s.into_iter().map(|v| v as usize).collect::<Vec<_>>())
                    .unwrap_or_else(|| vec![total / 3; 3]);
                if sizes.len() != 3 || sizes.iter().sum::<usize>() != *total {
                    continue;
                }
                let mut start = 0;
                for (part, size) in ["to_q", "to_k", "to_v"].iter().zip(sizes) {
                    let layout = Layout::Columns {
                        start,
                        total: *total,
                    };
                    push(format!("{attn}.{part}"), layout, size, *input);
                    start += size;
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The external data files the model's initializers name, each once.
pub fn external_files(model: &[u8]) -> Result<Vec<String>, String> {
    let (_, graph) = graph_fields(model)?;
    let mut out: Vec<String> = vec![];
    for t in initializers(&graph)?.values() {
        for e in t
            .iter()
            .filter(|f| f.number == TENSOR_EXTERNAL_DATA)
            .filter_map(Field::bytes)
        {
            let kv = wire::fields(e)?;
            let get = |n| kv.iter().find(|f| f.number == n).and_then(Field::string);
            if let (Some("location"), Some(v)) = (get(ENTRY_KEY), get(ENTRY_VALUE))
                && !out.iter().any(|o| o == v)
            {
                out.push(v.to_string());
            }
        }
    }
    Ok(out)
}

/// The values of initializers `names` (little-endian, their own kind).
pub fn read(
    model: &[u8],
    folder: &Path,
    names: &HashSet<&str>,
) -> Result<HashMap<String, Vec<u8>>, String> {
    let (_, graph) = graph_fields(model)?;
    let inits = initializers(&graph)?;
    names
        .iter()
        .map(|&name| {
            let t = inits
                .get(name)
                .ok_or_else(|| format!("no initializer {name:?}"))?;
            Ok((name.to_string(), tensor::values(t, name, folder)?))
        })
        .collect()
}

/// The model with each initializer in `values` (new little-endian values
/// of its own kind and size) moved to the external file `location`, and
/// that file's bytes (each tensor at a 64-byte aligned offset). Give the
/// file to the session in memory; nothing else in the model changes.
pub fn replace(
    model: &[u8],
    values: &HashMap<String, Vec<u8>>,
    location: &str,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (model_fields, graph_fields) = graph_fields(model)?;
    let mut file: Vec<u8> = vec![];
    let mut graph = Vec::with_capacity(model.len());
    let mut done = 0;
    for f in &graph_fields {
        let replaced = (f.number == GRAPH_INITIALIZER)
            .then(|| f.bytes().and_then(|b| wire::fields(b).ok()))
            .flatten()
            .and_then(|t| {
                let name = tensor_name(&t)?;
                values.get(name).map(|v| (t, name, v))
            });
        let Some((tensor, name, data)) = replaced else {
            graph.extend_from_slice(f.encoded);
            continue;
        };
        let (dims, kind) = tensor::header(&tensor, name)?;
        let expected = dims.iter().product::<usize>() * kind.size();
        if data.len() != expected {
            return Err(format!(
                "{name:?}: {} bytes given for {expected}",
                data.len()
            ));
        }
        file.resize(file.len().next_multiple_of(64), 0);
        let offset = file.len();
        file.extend_from_slice(data);
        let mut t = vec![];
        for x in tensor.iter().filter(|x| !VALUE_FIELDS.contains(&x.number)) {
            debug_assert!(matches!(
                x.number,
                TENSOR_DIMS | TENSOR_DATA_TYPE | TENSOR_NAME | 3 | 12 | 16
            ));
            t.extend_from_slice(x.encoded);
        }
        for (k, v) in [
            ("location", location.to_string()),
            ("offset", offset.to_string()),
            ("length", data.len().to_string()),
        ] {
            let mut entry = vec![];
            wire::put_bytes_field(&mut entry, ENTRY_KEY, k.as_bytes());
            wire::put_bytes_field(&mut entry, ENTRY_VALUE, v.as_bytes());
            wire::put_bytes_field(&mut t, TENSOR_EXTERNAL_DATA, &entry);
        }
        wire::put_varint_field(&mut t, TENSOR_DATA_LOCATION, 1);
        wire::put_bytes_field(&mut graph, GRAPH_INITIALIZER, &t);
        done += 1;
    }
    if done != values.len() {
        return Err(format!(
            "{} of {} initializers to replace were found",
            done,
            values.len()
        ));
    }
    let mut out = Vec::with_capacity(graph.len() + 1024);
    for f in &model_fields {
        if f.number == MODEL_GRAPH {
            wire::put_bytes_field(&mut out, MODEL_GRAPH, &graph);
        } else {
            out.extend_from_slice(f.encoded);
        }
    }
    Ok((out, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{ONNX_FLOAT, TENSOR_RAW_DATA};
    use crate::wire::{put_bytes_field, put_varint_field};

    fn node(name: &str, op: &str, inputs: &[&str], output: &str, trans_b: bool) -> Vec<u8> {
        let mut n = vec![];
        for i in inputs {
            put_bytes_field(&mut n, NODE_INPUT, i.as_bytes());
        }
        put_bytes_field(&mut n, NODE_OUTPUT, output.as_bytes());
        put_bytes_field(&mut n, NODE_NAME, name.as_bytes());
        put_bytes_field(&mut n, NODE_OP_TYPE, op.as_bytes());
        if trans_b {
            let mut a = vec![];
            put_bytes_field(&mut a, ATTR_NAME, b"transB");
            put_varint_field(&mut a, ATTR_I, 1);
            put_bytes_field(&mut n, NODE_ATTRIBUTE, &a);
        }
        n
    }

    fn init(name: &str, dims: &[u64], values: &[f32]) -> Vec<u8> {
        let mut t = vec![];
        for d in dims {
            put_varint_field(&mut t, TENSOR_DIMS, *d);
        }
        put_varint_field(&mut t, TENSOR_DATA_TYPE, ONNX_FLOAT);
        put_bytes_field(&mut t, TENSOR_NAME, name.as_bytes());
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        put_bytes_field(&mut t, TENSOR_RAW_DATA, &raw);
        t
    }

    /// x -> MatMul(w1 [2,3]) ; x -> MatMul(Transpose(w2 [3,2])) ; Gemm(transB).
    fn model() -> Vec<u8> {
        let mut g = vec![];
        for n in [
            node(
                "/blk/to_q/MatMul",
                "MatMul",
                &["x", "onnx::MatMul_1"],
                "q",
                false,
            ),
            node("/blk/to_k/Transpose", "Transpose", &["w2"], "w2t", false),
            node("/blk/to_k/MatMul", "MatMul", &["x", "w2t"], "k", false),
            node("/blk/proj/Gemm", "Gemm", &["x", "w3"], "p", true),
        ] {
            put_bytes_field(&mut g, GRAPH_NODE, &n);
        }
        for t in [
            init("onnx::MatMul_1", &[2, 3], &[1., 2., 3., 4., 5., 6.]),
            init("w2", &[3, 2], &[0.; 6]),
            init("w3", &[4, 2], &[0.; 8]),
        ] {
            put_bytes_field(&mut g, GRAPH_INITIALIZER, &t);
        }
        let mut m = vec![];
        put_varint_field(&mut m, 1, 8);
        put_bytes_field(&mut m, MODEL_GRAPH, &g);
        m
    }

    #[test]
    fn weights_are_found_with_their_layouts() {
        let idx = index(&model()).unwrap();
        let find = |m: &str| idx.iter().find(|w| w.module == m).unwrap().clone();
        let q = find("blk.to_q");
        assert_eq!((q.layout, q.out, q.inner), (Layout::InOut, 3, 2));
        assert_eq!(q.initializer, "onnx::MatMul_1");
        let k = find("blk.to_k");
        assert_eq!((k.layout, k.out, k.inner), (Layout::OutIn, 3, 2));
        let p = find("blk.proj");
        assert_eq!((p.layout, p.out, p.inner), (Layout::OutIn, 4, 2));
        assert_eq!(idx.len(), 3);
    }

    #[test]
    fn replaced_weights_point_into_the_new_file_and_nothing_else_moves() {
        let m = model();
        let new: Vec<u8> = [9f32; 6].iter().flat_map(|v| v.to_le_bytes()).collect();
        let values = HashMap::from([("w2".to_string(), new.clone())]);
        let (edited, file) = replace(&m, &values, "lora.bin").unwrap();
        assert_eq!(&file[..], &new[..]);
        // The other initializers read as before; w2 is now external.
        let (_, g) = graph_fields(&edited).unwrap();
        let inits = initializers(&g).unwrap();
        let dir = std::env::temp_dir().join(format!("weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("lora.bin"), &file).unwrap();
        assert_eq!(tensor::values(&inits["w2"], "w2", &dir).unwrap(), new);
        let names = HashSet::from(["onnx::MatMul_1"]);
        assert_eq!(
            read(&edited, &dir, &names).unwrap(),
            read(&m, &dir, &names).unwrap()
        );
        assert_eq!(index(&edited).unwrap(), index(&m).unwrap());
        std::fs::remove_dir_all(&dir).ok();
        let missing = HashMap::from([("nope".to_string(), vec![])]);
        assert!(replace(&m, &missing, "x").unwrap_err().contains("0 of 1"));
    }
}
