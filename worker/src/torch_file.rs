//! State dicts saved by PyTorch's `torch.save`, the form torchvision distributes its weights in
//! (`resnet50-11ad3fa6.pth`), read without Python.
//!
//! Two layouts exist. Since PyTorch 1.6 a file is a zip archive: `<name>/data.pkl` is a pickle of
//! the state dict whose tensors refer, through pickle's "persistent id" mechanism, to storages
//! kept as raw little-endian bytes in `<name>/data/<key>`. Older files (PyTorch before 1.6, or
//! `_use_new_zipfile_serialization=False`) are a run of pickles: a magic number, a protocol
//! number, system information, the state dict, the list of storage keys, and then each storage
//! as an 8-byte element count followed by its bytes.
//!
//! Both are read the same way: the file is memory-mapped, the state-dict pickle is run by a small
//! interpreter that knows only what state dicts contain (dicts, tuples, numbers, strings, and the
//! globals `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `_rebuild_parameter` and
//! the `torch.*Storage` classes), and each tensor is copied once, from its storage's mapped bytes,
//! into a tensor of its own. Anything else (an arbitrary pickled object, a training checkpoint
//! that nests the state dict in another dict) is refused with a message saying what was found;
//! no code from the file is ever run.

use super::{io_error, Result, StageError};
use memmap2::Mmap;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use tch::{Kind, Tensor};

/// The first bytes of a zip archive (a local file header).
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// The legacy layout's opening pickle: protocol 2, then the integer 0x1950a86a20f9469cfc6c as LONG1.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// Whether `bytes`, the start of a file, look like a `torch.save` file of either layout.
pub fn is_torch_file(bytes: &[u8]) -> bool {
    bytes.starts_with(ZIP_MAGIC) || bytes.starts_with(LEGACY_MAGIC)
}

/// Reads the state dict a `torch.save` file holds: every entry, by name, as a CPU tensor.
pub fn load(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let file = std::fs::File::open(path).map_err(|e| io_error(path, &e))?;
    // SAFETY: the map is read-only and dropped before this function returns; a weights file that
    // another process truncates meanwhile can make the read fault, as with any mapped input.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| io_error(path, &e))?;
    let fail = |why: String| StageError::new(format!("{} is not a readable PyTorch state dict (torch.save): {why}", path.display()));
    let bytes: &[u8] = &map;
    if bytes.starts_with(ZIP_MAGIC) {
        zip_layout(bytes).map_err(fail)
    } else if bytes.starts_with(LEGACY_MAGIC) {
        legacy_layout(bytes).map_err(fail)
    } else {
        Err(fail("it is neither a zip archive nor a legacy torch.save stream".into()))
    }
}

type Why<T> = std::result::Result<T, String>;

fn zip_layout(bytes: &[u8]) -> Why<BTreeMap<String, Tensor>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("a damaged zip archive ({e})"))?;
    let pickles: Vec<String> = archive.file_names().filter(|n| n.ends_with("data.pkl")).map(str::to_owned).collect();
    let [pickle_name] = pickles.as_slice() else {
        return Err(format!("the archive should hold one `data.pkl`, it holds {}", pickles.len()));
    };
    let prefix = pickle_name.trim_end_matches("data.pkl").to_owned();
    if let Ok(order) = entry(&mut archive, bytes, &format!("{prefix}byteorder")) {
        if order.as_ref() != b"little" {
            return Err(format!("its tensors are stored {}-endian; only little-endian files are read", String::from_utf8_lossy(&order)));
        }
    }
    let pickle = entry(&mut archive, bytes, pickle_name)?;
    let (root, _) = Machine::new(&pickle).run()?;
    let wanted = tensors_of(&root)?;
    let mut storages = HashMap::new();
    for (_, info) in &wanted {
        if !storages.contains_key(&info.storage.key) {
            let data = entry(&mut archive, bytes, &format!("{prefix}data/{}", info.storage.key))?;
            storages.insert(info.storage.key.clone(), data);
        }
    }
    build(wanted, |key| storages.get(key).map(|d| d.as_ref()))
}

/// One archive member's bytes: borrowed from the map when stored uncompressed (as `torch.save`
/// writes them), inflated otherwise.
fn entry<'a>(archive: &mut zip::ZipArchive<std::io::Cursor<&'a [u8]>>, bytes: &'a [u8], name: &str) -> Why<std::borrow::Cow<'a, [u8]>> {
    use std::io::Read;
    let mut member = archive.by_name(name).map_err(|e| format!("`{name}`: {e}"))?;
    let size = usize::try_from(member.size()).map_err(|_| format!("`{name}` is too large"))?;
    if member.compression() == zip::CompressionMethod::Stored {
        let start = usize::try_from(member.data_start()).map_err(|_| format!("`{name}` is out of range"))?;
        return bytes
            .get(start..start.saturating_add(size))
            .map(std::borrow::Cow::Borrowed)
            .ok_or_else(|| format!("`{name}` runs past the end of the file"));
    }
    let mut out = Vec::with_capacity(size);
    member.read_to_end(&mut out).map_err(|e| format!("`{name}`: {e}"))?;
    Ok(std::borrow::Cow::Owned(out))
}

fn legacy_layout(bytes: &[u8]) -> Why<BTreeMap<String, Tensor>> {
    let mut at = 0;
    // Magic number, protocol version, system information: read past them.
    for _ in 0..3 {
        at += Machine::new(&bytes[at..]).run()?.1;
    }
    let (root, used) = Machine::new(&bytes[at..]).run()?;
    at += used;
    let (keys, used) = Machine::new(&bytes[at..]).run()?;
    at += used;
    let Value::List(keys) = keys else { return Err("the list of storage keys is missing".into()) };
    let wanted = tensors_of(&root)?;
    let kinds: HashMap<&str, &Storage> = wanted.iter().map(|(_, t)| (t.storage.key.as_str(), t.storage.as_ref())).collect();
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for key in keys.borrow().iter() {
        let Value::Str(key) = key else { return Err("a storage key is not a string".into()) };
        let count = bytes.get(at..at + 8).ok_or("a storage runs past the end of the file")?;
        let count = u64::from_le_bytes(count.try_into().map_err(|_| "short count")?);
        at += 8;
        // Storages no tensor uses still take their place in the stream; their element size is
        // unknown here only when nothing refers to them, which a state dict never does.
        let storage = kinds.get(key.as_str()).ok_or_else(|| format!("storage `{key}` is used by no tensor"))?;
        let len =
            usize::try_from(count).ok().and_then(|c| c.checked_mul(storage.kind.elt_size_in_bytes())).ok_or("a storage is too large")?;
        let data = bytes.get(at..at.saturating_add(len)).ok_or_else(|| format!("storage `{key}` runs past the end of the file"))?;
        at += len;
        storages.insert(key.clone(), data);
    }
    build(wanted, |key| storages.get(key).copied())
}

/// The tensors of a state dict, in the dict's order, or what the pickle held instead.
fn tensors_of(root: &Value) -> Why<Vec<(String, Rc<TensorRef>)>> {
    let Value::Dict(entries) = root else {
        return Err(format!("it holds {}, not a state dict", root.describe()));
    };
    let entries = entries.borrow();
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries.iter() {
        let Value::Str(name) = key else { return Err(format!("a key of its dict is {}, not a name", key.describe())) };
        match value {
            Value::Tensor(t) => out.push((name.clone(), t.clone())),
            Value::Dict(_) => {
                return Err(format!(
                    "its entry `{name}` is itself a dict; this looks like a training checkpoint, not a state dict (save `model.state_dict()` itself, or `checkpoint[\"{name}\"]` if that is the model's)"
                ))
            }
            other => return Err(format!("its entry `{name}` is {}, not a tensor", other.describe())),
        }
    }
    Ok(out)
}

/// Copies each tensor out of its storage's bytes.
fn build<'a>(wanted: Vec<(String, Rc<TensorRef>)>, storage: impl Fn(&str) -> Option<&'a [u8]>) -> Why<BTreeMap<String, Tensor>> {
    let mut whole: HashMap<String, Tensor> = HashMap::new();
    let mut out = BTreeMap::new();
    for (name, t) in wanted {
        let key = &t.storage.key;
        if !whole.contains_key(key) {
            let data = storage(key).ok_or_else(|| format!("the storage of `{name}` is missing"))?;
            let elt = t.storage.kind.elt_size_in_bytes();
            if data.len() % elt != 0 {
                return Err(format!("the storage of `{name}` holds {} bytes, not a whole number of elements", data.len()));
            }
            let n = i64::try_from(data.len() / elt).map_err(|_| "a storage is too large")?;
            let flat = Tensor::f_from_data_size(data, &[n], t.storage.kind).map_err(|e| format!("`{name}`: {e}"))?;
            whole.insert(key.clone(), flat);
        }
        let flat = &whole[key];
        let numel = flat.size()[0];
        // The last element the view reaches must lie inside the storage.
        let empty = t.size.contains(&0);
        let last = t.offset + t.size.iter().zip(&t.stride).map(|(d, s)| (d - 1).max(0) * s).sum::<i64>();
        if t.size.len() != t.stride.len() || t.offset < 0 || t.stride.iter().any(|&s| s < 0) || (!empty && last >= numel) {
            return Err(format!(
                "`{name}` (shape {:?}, strides {:?}, offset {}) does not fit its storage of {numel} elements",
                t.size, t.stride, t.offset
            ));
        }
        let view = flat.f_as_strided(&t.size, &t.stride, Some(t.offset)).map_err(|e| format!("`{name}`: {e}"))?;
        // A tensor that is its whole storage keeps it; a part of a storage is copied out, so
        // that no tensor keeps a larger one alive.
        let whole_storage = t.offset == 0 && view.is_contiguous() && i64::try_from(view.numel()).ok() == Some(numel);
        let tensor = if whole_storage {
            view
        } else {
            let mut owned = view.f_contiguous().and_then(|v| v.f_empty_like()).map_err(|e| format!("`{name}`: {e}"))?;
            owned.f_copy_(&view).map_err(|e| format!("`{name}`: {e}"))?;
            owned
        };
        out.insert(name, tensor);
    }
    Ok(out)
}

#[derive(Debug)]
struct Storage {
    key: String,
    kind: Kind,
}

#[derive(Debug)]
struct TensorRef {
    storage: Rc<Storage>,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

#[derive(Debug, Clone)]
enum Value {
    Mark,
    None,
    Bool(bool),
    Int(i64),
    BigInt,
    Float,
    Str(String),
    Bytes,
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Rc<(String, String)>),
    Storage(Rc<Storage>),
    Tensor(Rc<TensorRef>),
    /// Something built from a global the reader does not interpret; named in errors.
    Object(Rc<(String, String)>),
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Value::Mark => "a pickle mark".into(),
            Value::None => "None".into(),
            Value::Bool(_) => "a boolean".into(),
            Value::Int(_) | Value::BigInt => "an integer".into(),
            Value::Float => "a float".into(),
            Value::Str(_) => "a string".into(),
            Value::Bytes => "bytes".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::List(_) => "a list".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Global(g) => format!("the class or function `{}.{}`", g.0, g.1),
            Value::Storage(_) => "a storage".into(),
            Value::Tensor(_) => "a tensor".into(),
            Value::Object(g) => format!("a `{}.{}` object", g.0, g.1),
        }
    }

    fn int(&self, what: &str) -> Why<i64> {
        match self {
            Value::Int(n) => Ok(*n),
            Value::Bool(b) => Ok(i64::from(*b)),
            other => Err(format!("{what} is {}, not an integer", other.describe())),
        }
    }

    fn ints(&self, what: &str) -> Why<Vec<i64>> {
        match self {
            Value::Tuple(items) => items.iter().map(|v| v.int(what)).collect(),
            Value::List(items) => items.borrow().iter().map(|v| v.int(what)).collect(),
            other => Err(format!("{what} is {}, not a tuple of integers", other.describe())),
        }
    }
}

/// The storage classes `torch.save` names (`torch.FloatStorage`, ...) and their element kinds.
fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

/// A pickle interpreter for the opcodes of protocols 2 to 5 that state dicts use.
struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8]) -> Machine<'a> {
        Machine { bytes, at: 0, stack: Vec::new(), memo: HashMap::new() }
    }

    fn take(&mut self, n: usize) -> Why<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("the pickle ends early")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn byte(&mut self) -> Why<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Why<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| "short")?))
    }

    fn u32(&mut self) -> Why<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| "short")?))
    }

    fn u64(&mut self) -> Why<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| "short")?))
    }

    fn line(&mut self) -> Why<String> {
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("the pickle ends inside a name")?;
        let text = String::from_utf8(rest[..end].to_vec()).map_err(|_| "a name is not UTF-8")?;
        self.at += end + 1;
        Ok(text)
    }

    fn text(&mut self, n: usize) -> Why<Value> {
        let raw = self.take(n)?;
        Ok(Value::Str(String::from_utf8(raw.to_vec()).map_err(|_| "a string is not UTF-8")?))
    }

    fn pop(&mut self) -> Why<Value> {
        self.stack.pop().ok_or_else(|| "the pickle pops an empty stack".into())
    }

    fn top(&mut self) -> Why<&mut Value> {
        self.stack.last_mut().ok_or_else(|| "the pickle reads an empty stack".into())
    }

    /// The values above the topmost mark, which is removed.
    fn pop_mark(&mut self) -> Why<Vec<Value>> {
        let mark = self.stack.iter().rposition(|v| matches!(v, Value::Mark)).ok_or("the pickle has no mark where one is needed")?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn memoize(&mut self, slot: u32) -> Why<()> {
        let value = self.top()?.clone();
        self.memo.insert(slot, value);
        Ok(())
    }

    fn recall(&mut self, slot: u32) -> Why<()> {
        let value =
            self.memo.get(&slot).cloned().ok_or_else(|| format!("the pickle refers to memo entry {slot}, which it never stored"))?;
        self.stack.push(value);
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Value>) -> Why<()> {
        if !items.len().is_multiple_of(2) {
            return Err("a dict update has a key without a value".into());
        }
        let Value::Dict(dict) = self.top()? else { return Err("the pickle sets items on something that is not a dict".into()) };
        let mut dict = dict.borrow_mut();
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            // A repeated key replaces the earlier value, as in Python.
            if let Value::Str(name) = &key {
                if let Some(slot) = dict.iter_mut().find(|(k, _)| matches!(k, Value::Str(n) if n == name)) {
                    slot.1 = value;
                    continue;
                }
            }
            dict.push((key, value));
        }
        Ok(())
    }

    fn append(&mut self, items: Vec<Value>) -> Why<()> {
        let Value::List(list) = self.top()? else { return Err("the pickle appends to something that is not a list".into()) };
        list.borrow_mut().extend(items);
        Ok(())
    }

    /// Runs to STOP; returns the result and the bytes read.
    fn run(mut self) -> Why<(Value, usize)> {
        loop {
            let op = self.byte()?;
            match op {
                0x80 => {
                    let protocol = self.byte()?;
                    if protocol > 5 {
                        return Err(format!("pickle protocol {protocol} is newer than any known"));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a length hint only
                }
                b'.' => {
                    let result = self.pop()?;
                    return Ok((result, self.at));
                }
                b'(' => self.stack.push(Value::Mark),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.byte()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                0x8a | 0x8b => {
                    let n =
                        if op == 0x8a { usize::from(self.byte()?) } else { usize::try_from(self.u32()?).map_err(|_| "long too large")? };
                    let raw = self.take(n)?;
                    let value = if n == 0 {
                        Value::Int(0)
                    } else if n <= 8 {
                        let negative = raw[n - 1] & 0x80 != 0;
                        let mut full = [if negative { 0xff } else { 0 }; 8];
                        full[..n].copy_from_slice(raw);
                        Value::Int(i64::from_le_bytes(full))
                    } else {
                        Value::BigInt
                    };
                    self.stack.push(value);
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Value::Float);
                }
                b'X' => {
                    let n = usize::try_from(self.u32()?).map_err(|_| "string too large")?;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = usize::from(self.byte()?);
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?).map_err(|_| "string too large")?;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                // Byte strings (BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, BINBYTES8):
                // PyTorch writes storage keys as text, so their contents are not needed.
                b'T' | b'B' => {
                    let n = usize::try_from(self.u32()?).map_err(|_| "bytes too large")?;
                    self.take(n)?;
                    self.stack.push(Value::Bytes);
                }
                b'U' | b'C' => {
                    let n = usize::from(self.byte()?);
                    self.take(n)?;
                    self.stack.push(Value::Bytes);
                }
                0x8e => {
                    let n = usize::try_from(self.u64()?).map_err(|_| "bytes too large")?;
                    self.take(n)?;
                    self.stack.push(Value::Bytes);
                }
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err("the pickle builds a tuple from an empty stack".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b']' => self.stack.push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'a' => {
                    let item = self.pop()?;
                    self.append(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'}' => self.stack.push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Dict(Rc::new(RefCell::new(Vec::new()))));
                    self.set_items(items)?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(Rc::new((module, name))));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err("a global's module or name is not a string".into());
                    };
                    self.stack.push(Value::Global(Rc::new((module, name))));
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = reduce(&callable, &args)?;
                    self.stack.push(value);
                }
                0x81 => {
                    let _args = self.pop()?;
                    let Value::Global(class) = self.pop()? else {
                        return Err("the pickle instantiates something that is not a class".into());
                    };
                    self.stack.push(Value::Object(class));
                }
                b'b' => {
                    // BUILD sets an object's state; a state dict's is its `_metadata` (module
                    // versions), which loading does not need.
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = persistent(&pid)?;
                    self.stack.push(storage);
                }
                b'q' => {
                    let slot = self.byte()?;
                    self.memoize(u32::from(slot))?;
                }
                b'r' => {
                    let slot = self.u32()?;
                    self.memoize(slot)?;
                }
                0x94 => {
                    let slot = u32::try_from(self.memo.len()).map_err(|_| "memo too large")?;
                    self.memoize(slot)?;
                }
                b'h' => {
                    let slot = self.byte()?;
                    self.recall(u32::from(slot))?;
                }
                b'j' => {
                    let slot = self.u32()?;
                    self.recall(slot)?;
                }
                other => {
                    return Err(format!("the pickle uses opcode 0x{other:02x} at byte {}, which state dicts do not need", self.at - 1));
                }
            }
        }
    }
}

/// A storage from its persistent id: `('storage', torch.FloatStorage, key, location, numel[, view])`.
fn persistent(pid: &Value) -> Why<Value> {
    let Value::Tuple(parts) = pid else { return Err(format!("a persistent id is {}, not a tuple", pid.describe())) };
    match parts.as_slice() {
        [Value::Str(tag), Value::Global(class), Value::Str(key), ..] if tag == "storage" => {
            let kind = storage_kind(&class.1)
                .filter(|_| class.0 == "torch")
                .ok_or_else(|| format!("a storage of type `{}.{}`, which is not read", class.0, class.1))?;
            Ok(Value::Storage(Rc::new(Storage { key: key.clone(), kind })))
        }
        _ => Err("a persistent id that is not a storage".into()),
    }
}

/// Calls the few globals a state dict uses; other callables give an opaque object.
fn reduce(callable: &Value, args: &Value) -> Why<Value> {
    let Value::Global(global) = callable else { return Err(format!("the pickle calls {}", callable.describe())) };
    let Value::Tuple(args) = args else { return Err(format!("the arguments of `{}.{}` are not a tuple", global.0, global.1)) };
    match (global.0.as_str(), global.1.as_str()) {
        ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") if args.is_empty() => {
            Ok(Value::Dict(Rc::new(RefCell::new(Vec::new()))))
        }
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]);
        // the older `_rebuild_tensor` takes the first four.
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") if args.len() >= 4 => {
            let Value::Storage(storage) = &args[0] else {
                return Err(format!("a tensor is rebuilt from {}, not a storage", args[0].describe()));
            };
            Ok(Value::Tensor(Rc::new(TensorRef {
                storage: storage.clone(),
                offset: args[1].int("a storage offset")?,
                size: args[2].ints("a tensor's size")?,
                stride: args[3].ints("a tensor's stride")?,
            })))
        }
        // nn.Parameter(data, requires_grad, backward_hooks): the data is what is loaded.
        ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") if !args.is_empty() => {
            Ok(args[0].clone())
        }
        _ => Ok(Value::Object(global.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written protocol-2 pickle of `OrderedDict(w=<2x2 float tensor>, n=<int64 scalar>)`
    /// where `w` is the transposed view of storage "0" (strides (1, 2)), as torch.save writes it.
    fn state_dict_pickle() -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(");
        // "w": _rebuild_tensor_v2(storage('0', FloatStorage), 0, (2, 2), (1, 2), False, OrderedDict())
        p.extend_from_slice(b"X\x01\x00\x00\x00wq\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x04tq\x08QK\x00K\x02K\x02\x86K\x01K\x02\x86\x89ccollections\nOrderedDict\n)Rq\x09tq\x0aRq\x0b");
        // "n": a 0-d tensor in storage "1"
        p.extend_from_slice(b"X\x01\x00\x00\x00nh\x03((h\x04ctorch\nLongStorage\nX\x01\x00\x00\x001h\x07K\x01tQK\x00))\x89h\x09tRu}X\x09\x00\x00\x00_metadataq\x0c}sb.");
        p
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn a_zip_state_dict_is_read_with_views_and_scalars() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pth");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let stored = zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("w/data.pkl", stored).unwrap();
        zip.write_all(&state_dict_pickle()).unwrap();
        zip.start_file("w/byteorder", stored).unwrap();
        zip.write_all(b"little").unwrap();
        zip.start_file("w/data/0", stored).unwrap();
        zip.write_all(&floats(&[1.0, 2.0, 3.0, 4.0])).unwrap();
        zip.start_file("w/data/1", stored).unwrap();
        zip.write_all(&7i64.to_le_bytes()).unwrap();
        zip.finish().unwrap();
        let read = load(&path).unwrap();
        assert_eq!(read.keys().collect::<Vec<_>>(), ["n", "w"]);
        assert_eq!(read["w"].size(), [2, 2]);
        // Strides (1, 2) over [1, 2, 3, 4]: row 0 is (1, 3), row 1 is (2, 4).
        assert_eq!(Vec::<f32>::try_from(read["w"].flatten(0, -1)).unwrap(), [1.0, 3.0, 2.0, 4.0]);
        assert_eq!(read["n"].size(), Vec::<i64>::new());
        assert_eq!(read["n"].int64_value(&[]), 7);
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pth");
        std::fs::write(&path, b"PK\x03\x04 and then nothing a zip reader accepts").unwrap();
        let error = load(&path).unwrap_err().0;
        assert!(error.contains("w.pth") && error.contains("damaged zip"), "{error}");
        std::fs::write(&path, b"hello").unwrap();
        let error = load(&path).unwrap_err().0;
        assert!(error.contains("neither a zip archive"), "{error}");
        // A legacy stream cut short inside its pickle.
        std::fs::write(&path, LEGACY_MAGIC).unwrap();
        let error = load(&path).unwrap_err().0;
        assert!(error.contains("ends early"), "{error}");
    }
}
