//! Finding and loading operator libraries: the search path, the ABI handshake, the manifest.
//!
//! The handshake reads a plain `u32` before any plugin function runs, then the manifest, then the
//! vtable. Libraries are cached by canonical path and shared (`Arc`); a library is unloaded only
//! when every instance and every array it produced is gone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use quiver_abi as abi;
use quiver_graph::{OperatorRef, OperatorSpec, ParamSpec, ParamValue, PortSpec, TimerSpec};
use quiver_operator::ffi::{kind_from_c, param_from_c, read_str};

use crate::error::LoadError;

/// A loaded operator library.
pub struct Library {
    pub path: PathBuf,
    pub spec: Arc<OperatorSpec>,
    pub(crate) vtable: abi::VTable,
    // Last field: dropped (unloaded) after everything above.
    _lib: libloading::Library,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("operator", &self.spec.name)
            .finish()
    }
}

/// The library file name for an operator name: `camera-source` -> `libcamera_source.so`.
pub fn library_file_name(operator: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        operator.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Where operators are looked for, in order: `QUIVER_OPERATOR_PATH`, the graph's folder, the
/// folder of the running `quiver` binary (the workspace's build output), `./target/{debug,release}`.
#[derive(Clone, Debug, Default)]
pub struct SearchPath {
    pub dirs: Vec<PathBuf>,
}

impl SearchPath {
    pub fn new(graph_dir: Option<&Path>) -> Self {
        let mut dirs = Vec::new();
        if let Some(env) = std::env::var_os("QUIVER_OPERATOR_PATH") {
            dirs.extend(std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()));
        }
        if let Some(d) = graph_dir {
            dirs.push(d.to_path_buf());
        }
        if let Some(exe_dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            // Test and bench binaries live in target/<profile>/deps.
            if exe_dir.file_name().is_some_and(|n| n == "deps")
                && let Some(parent) = exe_dir.parent()
            {
                dirs.push(parent.to_path_buf());
            }
            dirs.push(exe_dir);
        }
        for profile in ["debug", "release"] {
            let d = PathBuf::from("target").join(profile);
            if d.is_dir() {
                dirs.push(d);
            }
        }
        let mut seen = Vec::new();
        dirs.retain(|d| {
            let key = d.canonicalize().unwrap_or_else(|_| d.clone());
            if seen.contains(&key) {
                false
            } else {
                seen.push(key);
                true
            }
        });
        SearchPath { dirs }
    }

    /// The first existing library for `operator`.
    pub fn find(&self, operator: &str) -> Result<PathBuf, LoadError> {
        let file = library_file_name(operator);
        for d in &self.dirs {
            let p = d.join(&file);
            if p.is_file() {
                return Ok(p);
            }
        }
        let searched = if self.dirs.is_empty() {
            "no folder".to_string()
        } else {
            self.dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(LoadError::NotFound {
            name: operator.into(),
            file,
            searched,
        })
    }
}

/// Loads libraries once and hands out shared handles.
#[derive(Debug, Default)]
pub struct Registry {
    search: SearchPath,
    loaded: Mutex<HashMap<PathBuf, Arc<Library>>>,
}

impl Registry {
    pub fn new(search: SearchPath) -> Self {
        Registry {
            search,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn search_path(&self) -> &SearchPath {
        &self.search
    }

    /// Loads the library an operator reference names; a name must match the manifest's name.
    pub fn resolve(&self, r: &OperatorRef) -> Result<Arc<Library>, LoadError> {
        match r {
            OperatorRef::Name(name) => {
                let path = self.search.find(name)?;
                let lib = self.load(&path)?;
                if lib.spec.name != *name {
                    return Err(LoadError::WrongName {
                        path,
                        wanted: name.clone(),
                        found: lib.spec.name.clone(),
                    });
                }
                Ok(lib)
            }
            OperatorRef::Path(path) => self.load(path),
        }
    }

    /// Loads (or returns the already loaded) library at `path`.
    pub fn load(&self, path: &Path) -> Result<Arc<Library>, LoadError> {
        let key = path.canonicalize().map_err(|e| LoadError::Open {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lib) = loaded.get(&key) {
            return Ok(lib.clone());
        }
        let lib = Arc::new(load_library(&key)?);
        loaded.insert(key, lib.clone());
        Ok(lib)
    }

    /// Every operator library in the search path, with its manifest or why it failed.
    pub fn discover(&self) -> Vec<(PathBuf, Result<Arc<Library>, LoadError>)> {
        let mut out = Vec::new();
        let mut names = Vec::new();
        for dir in &self.search.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.starts_with(std::env::consts::DLL_PREFIX) && n.ends_with(std::env::consts::DLL_SUFFIX)
                    })
                })
                .collect();
            files.sort();
            for f in files {
                let file_name = f.file_name().map(|n| n.to_os_string());
                if names.contains(&file_name) {
                    continue; // shadowed by an earlier folder, as `find` would
                }
                match self.load(&f) {
                    Err(LoadError::NotAPlugin { .. }) => {}
                    result => {
                        names.push(file_name);
                        out.push((f, result));
                    }
                }
            }
        }
        out
    }
}

/// A library larger than this is refused (operators are tens of MB).
const MAX_LIBRARY_BYTES: u64 = 1 << 30;

/// Checks that `path` is a whole ELF shared library before the dynamic loader maps it: mapping
/// a truncated file and touching a page past its end kills the process with SIGBUS, which no
/// error handling can catch. Reads the header and the program headers only.
fn check_library_file(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let len = meta.len();
    if len > MAX_LIBRARY_BYTES {
        return Err(format!(
            "{len} bytes: larger than the {} MiB an operator library may be",
            MAX_LIBRARY_BYTES >> 20
        ));
    }
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    f.read_exact(&mut head)
        .map_err(|_| format!("{len} bytes: too short to be a shared library"))?;
    if &head[..4] != b"\x7fELF" {
        return Err("not an ELF shared library".into());
    }
    if head[4] != 2 || head[5] != 1 {
        return Err("not a 64-bit little-endian ELF library".into());
    }
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([head[o], head[o + 1]]));
    let u64_at = |b: &[u8], o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(a)
    };
    let (phoff, shoff) = (u64_at(&head, 0x20), u64_at(&head, 0x28));
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    let (shentsize, shnum) = (u16_at(0x3a), u16_at(0x3c));
    let truncated = |needed: u64| {
        format!("truncated: {len} bytes, its headers say at least {needed} (a copy or download cut short?)")
    };
    let ph_end = phoff.saturating_add(phentsize.saturating_mul(phnum));
    let sh_end = shoff.saturating_add(shentsize.saturating_mul(shnum));
    if ph_end > len || phentsize < 56 {
        return Err(truncated(ph_end));
    }
    if sh_end > len {
        return Err(truncated(sh_end));
    }
    let mut ph = vec![0u8; (phentsize * phnum) as usize];
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(phoff)).map_err(|e| e.to_string())?;
    f.read_exact(&mut ph).map_err(|e| e.to_string())?;
    for entry in ph.chunks(phentsize as usize) {
        // PT_LOAD: the loader maps p_filesz bytes from p_offset.
        if u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]) == 1 {
            let end = u64_at(entry, 0x08).saturating_add(u64_at(entry, 0x20));
            if end > len {
                return Err(truncated(end));
            }
        }
    }
    Ok(())
}

fn load_library(path: &Path) -> Result<Library, LoadError> {
    let open_err = |reason: String| LoadError::Open {
        path: path.into(),
        reason,
    };
    check_library_file(path).map_err(open_err)?;
    // SAFETY: loading a library runs its initialisers. Operator libraries are Rust cdylibs built
    // with the SDK, which have none; the risk of loading an arbitrary library is the user's choice
    // of file (as with any plugin system).
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::Open {
        path: path.into(),
        reason: e.to_string(),
    })?;

    // Step 1: the ABI version, a plain u32 read before any plugin code runs.
    // SAFETY: the symbol, if present, is a `static u32` (the SDK's export macro defines it so).
    let version = unsafe {
        match lib.get::<*const u32>(abi::SYMBOL_ABI_VERSION) {
            Ok(sym) => **sym,
            Err(_) => return Err(LoadError::NotAPlugin { path: path.into() }),
        }
    };
    if version != abi::ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            host: abi::ABI_VERSION,
            plugin: version,
            path: path.into(),
        });
    }
    let bad = |reason: &str| LoadError::Manifest {
        path: path.into(),
        reason: reason.into(),
    };

    // Step 2: the manifest.
    // SAFETY: with the ABI version checked, the symbol has the declared signature.
    let manifest_fn =
        unsafe { lib.get::<abi::ManifestFn>(abi::SYMBOL_MANIFEST) }.map_err(|_| bad("no quiver_manifest function"))?;
    // SAFETY: the function takes no arguments and returns a pointer valid for the library's life.
    let manifest = unsafe { manifest_fn() };
    if manifest.is_null() {
        return Err(bad("the manifest function failed (the operator's manifest() panicked)"));
    }
    // SAFETY: non-null and valid for the library's life (ABI contract).
    let spec = unsafe { read_manifest(&*manifest) }.map_err(|r| bad(&r))?;

    // Step 3: the vtable.
    // SAFETY: as for the manifest.
    let vtable_fn =
        unsafe { lib.get::<abi::VTableFn>(abi::SYMBOL_VTABLE) }.map_err(|_| bad("no quiver_vtable function"))?;
    // SAFETY: as for the manifest.
    let vtable = unsafe { vtable_fn() };
    if vtable.is_null() {
        return Err(bad("the vtable function returned null"));
    }
    // SAFETY: non-null, valid for the library's life; copied out.
    let vtable = unsafe { *vtable };
    if vtable.struct_size != size_of::<abi::VTable>() {
        return Err(bad(&format!(
            "vtable size {} but the host expects {}",
            vtable.struct_size,
            size_of::<abi::VTable>()
        )));
    }
    Ok(Library {
        path: path.into(),
        spec: Arc::new(spec),
        vtable,
        _lib: lib,
    })
}

/// Copies a C manifest into an [`OperatorSpec`], refusing malformed ones.
///
/// # Safety
/// `m` and everything it points to must be valid (ABI contract).
unsafe fn read_manifest(m: &abi::Manifest) -> Result<OperatorSpec, String> {
    if m.abi_version != abi::ABI_VERSION {
        return Err(format!(
            "manifest says ABI {} but the library exports ABI {}",
            m.abi_version,
            abi::ABI_VERSION
        ));
    }
    // SAFETY: (for the whole block) the caller guarantees `m`'s pointers are valid arrays of the
    // given lengths holding valid strings.
    unsafe {
        let slice = |ptr: *const abi::PortDecl, n: usize| {
            if n == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(ptr, n)
            }
        };
        let ports = |ptr, n| -> Vec<PortSpec> {
            slice(ptr, n)
                .iter()
                .map(|p| PortSpec {
                    name: read_str(p.name),
                    msg_type: read_str(p.msg_type),
                    doc: read_str(p.doc),
                    required: p.required != 0,
                })
                .collect()
        };
        let timers = if m.n_timers == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(m.timers, m.n_timers)
        };
        let params = if m.n_params == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(m.params, m.n_params)
        };
        let value = |present: u8, v: &abi::ParamValue| -> Result<Option<ParamValue>, String> {
            if present == 0 {
                return Ok(None);
            }
            Ok(Some(
                param_from_c(v).ok_or_else(|| format!("unknown parameter kind {}", v.kind))?,
            ))
        };
        let mut param_specs = Vec::new();
        for p in params {
            let name = read_str(p.name);
            let kind = kind_from_c(p.kind).ok_or_else(|| format!("parameter `{name}` has unknown kind {}", p.kind))?;
            param_specs.push(ParamSpec {
                kind,
                doc: read_str(p.doc),
                default: value(p.has_default, &p.default)?,
                min: value(p.has_min, &p.min)?,
                max: value(p.has_max, &p.max)?,
                name,
            });
        }
        let spec = OperatorSpec {
            name: read_str(m.name),
            version: read_str(m.version),
            doc: read_str(m.doc),
            sdk: read_str(m.sdk),
            inputs: ports(m.inputs, m.n_inputs),
            outputs: ports(m.outputs, m.n_outputs),
            timers: timers
                .iter()
                .map(|t| TimerSpec {
                    name: read_str(t.name),
                    doc: read_str(t.doc),
                })
                .collect(),
            params: param_specs,
            graph_ports: (m.graph_ports != 0).then(|| quiver_graph::GraphPorts {
                doc: read_str(m.graph_ports_doc),
                settings: if m.n_port_settings == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(m.port_settings, m.n_port_settings)
                }
                .iter()
                .map(|t| TimerSpec {
                    name: read_str(t.name),
                    doc: read_str(t.doc),
                })
                .collect(),
                types: if m.n_port_types == 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(m.port_types, m.n_port_types)
                }
                .iter()
                .map(|t| read_str(*t))
                .collect(),
            }),
        };
        if spec.name.is_empty() {
            return Err("the operator has no name".into());
        }
        Ok(spec)
    }
}
