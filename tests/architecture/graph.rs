//! The file-level import graph of a crate's source, from its text: a small lexer (comments
//! and literals out), a parser of `use` trees, paths and macro calls, name resolution through
//! re-exports, and Tarjan's strongly connected components.

use std::collections::{BTreeMap, BTreeSet};

/// A cycle of files, printed `a.rs -> b.rs -> a.rs`.
pub type Cycle = Vec<String>;

/// The module path of a file: `lib.rs` is `[]`, `a/b.rs` and `a/b/mod.rs` are `[a, b]`.
fn module_of(file: &str) -> Vec<String> {
    let stem = file.strip_suffix(".rs").unwrap_or(file);
    let mut segs: Vec<String> = stem.split('/').map(str::to_owned).collect();
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    segs
}

// Lexing: comments and literals out, then tokens.

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(src: &str) -> Vec<Tok> {
    let cs: Vec<char> = src.chars().collect();
    let at = |i: usize| cs.get(i).copied().unwrap_or('\0');
    let mut toks = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = at(i);
        if c == '/' && at(i + 1) == '/' {
            while i < cs.len() && at(i) != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < cs.len() {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < cs.len() && at(i) != '"' {
                i += if at(i) == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if (c == 'r' || (c == 'b' && at(i + 1) == 'r'))
            && !is_ident(if i == 0 { ' ' } else { at(i - 1) })
            && {
                let mut j = i + if c == 'b' { 2 } else { 1 };
                while at(j) == '#' {
                    j += 1;
                }
                at(j) == '"'
            }
        {
            // A raw string: r"..", r#".."#, br"..".
            i += if c == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(i) == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            loop {
                if i >= cs.len() {
                    break;
                }
                if at(i) == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                // An escaped char literal: '\n', '\'', '\u{..}'.
                i += 3;
                while i < cs.len() && at(i) != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime or label.
                i += 1;
            }
        } else if is_ident(c) {
            let start = i;
            while i < cs.len() && is_ident(at(i)) {
                i += 1;
            }
            let word: String = cs.get(start..i).unwrap_or_default().iter().collect();
            if !word.starts_with(|d: char| d.is_ascii_digit()) {
                toks.push(Tok::Ident(word));
            }
        } else if c == ':' && at(i + 1) == ':' {
            toks.push(Tok::Path);
            i += 2;
        } else {
            if !c.is_whitespace() {
                toks.push(Tok::Punct(c));
            }
            i += 1;
        }
    }
    toks
}

fn ident(t: Option<&Tok>) -> Option<&str> {
    match t {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

/// The index after the item starting at `i`: its `;`, or its matching `}`.
fn skip_item(toks: &[Tok], mut i: usize) -> usize {
    let mut depth = 0usize;
    while let Some(t) = toks.get(i) {
        i += 1;
        match t {
            Tok::Punct('{' | '(' | '[') => depth += 1,
            Tok::Punct('}' | ')' | ']') => {
                depth = depth.saturating_sub(1);
                if depth == 0 && *t == Tok::Punct('}') {
                    return i;
                }
            }
            Tok::Punct(';') if depth == 0 => return i,
            _ => {}
        }
    }
    i
}

/// Whether the attribute starting at `i` (`#[`) is `#[cfg(test)]`; returns the index after it.
fn attribute(toks: &[Tok], i: usize) -> (bool, usize) {
    let mut depth = 0;
    let mut end = toks.len();
    for (k, t) in toks.iter().enumerate().skip(i + 1) {
        match t {
            Tok::Punct('[') => depth += 1,
            Tok::Punct(']') => {
                depth -= 1;
                if depth == 0 {
                    end = k + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    let body = toks.get(i + 2..end.saturating_sub(1)).unwrap_or_default();
    let is_test = matches!(
        body,
        [Tok::Ident(cfg), Tok::Punct('('), Tok::Ident(t), Tok::Punct(')')] if cfg == "cfg" && t == "test"
    );
    (is_test, end)
}

// One file, parsed.

/// A name a `use` brings into a file's scope: `alias` stands for `path`.
#[derive(Debug)]
struct Import {
    path: Vec<String>,
    alias: String,
    /// The module the `use` is in (a file's module, or an inline module in it).
    module: Vec<String>,
}

#[derive(Debug, Default)]
struct Parsed {
    /// Names of items defined here (struct, fn, mod, macro, ...).
    defines: BTreeSet<String>,
    macros: BTreeSet<String>,
    imports: Vec<Import>,
    /// Paths used outside `use`, with the module they are written in.
    paths: Vec<(Vec<String>, Vec<String>)>,
    macro_calls: BTreeSet<String>,
}

const ITEM_KEYWORDS: &[&str] = &[
    "struct", "enum", "trait", "fn", "type", "const", "static", "mod", "union",
];

fn parse(module: &[String], text: &str) -> Parsed {
    let toks = lex(text);
    let mut p = Parsed::default();
    // Inline modules open at a brace depth; `None` for any other brace.
    let mut scopes: Vec<Option<String>> = Vec::new();
    let current = |scopes: &[Option<String>]| {
        let mut m = module.to_vec();
        m.extend(scopes.iter().flatten().cloned());
        m
    };
    let mut i = 0;
    while let Some(t) = toks.get(i) {
        match t {
            Tok::Punct('#') if toks.get(i + 1) == Some(&Tok::Punct('[')) => {
                let (is_test, end) = attribute(&toks, i);
                i = end;
                if is_test {
                    while toks.get(i) == Some(&Tok::Punct('#')) {
                        i = attribute(&toks, i).1;
                    }
                    i = skip_item(&toks, i);
                }
                continue;
            }
            Tok::Punct('{') => scopes.push(None),
            Tok::Punct('}') => {
                scopes.pop();
            }
            Tok::Ident(kw) if kw == "use" => {
                let end = toks[i..]
                    .iter()
                    .position(|t| *t == Tok::Punct(';'))
                    .map_or(toks.len(), |e| i + e);
                let mut trees = Vec::new();
                use_tree(toks.get(i + 1..end).unwrap_or_default(), &[], &mut trees);
                let m = current(&scopes);
                for (path, alias) in trees {
                    p.imports.push(Import {
                        path,
                        alias,
                        module: m.clone(),
                    });
                }
                i = end + 1;
                continue;
            }
            Tok::Ident(kw) if kw == "macro_rules" && toks.get(i + 1) == Some(&Tok::Punct('!')) => {
                // The body stays in: the paths a macro writes are this file's imports.
                if let Some(name) = ident(toks.get(i + 2)) {
                    p.macros.insert(name.to_owned());
                    p.defines.insert(name.to_owned());
                }
                i += 3;
                continue;
            }
            Tok::Ident(kw) if ITEM_KEYWORDS.contains(&kw.as_str()) => {
                if let Some(name) = ident(toks.get(i + 1)) {
                    p.defines.insert(name.to_owned());
                    if kw == "mod" && toks.get(i + 2) == Some(&Tok::Punct('{')) {
                        scopes.push(Some(name.to_owned()));
                        i += 3;
                        continue;
                    }
                }
            }
            Tok::Ident(name) if toks.get(i + 1) == Some(&Tok::Punct('!')) => {
                p.macro_calls.insert(name.clone());
            }
            Tok::Ident(first)
                if toks.get(i + 1) == Some(&Tok::Path)
                    && !matches!(i.checked_sub(1).and_then(|j| toks.get(j)), Some(Tok::Path)) =>
            {
                let mut path = vec![first.clone()];
                let mut j = i + 1;
                while toks.get(j) == Some(&Tok::Path) {
                    let Some(seg) = ident(toks.get(j + 1)) else {
                        break;
                    };
                    path.push(seg.to_owned());
                    j += 2;
                }
                p.paths.push((path, current(&scopes)));
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    p
}

/// Expands a `use` tree (`a::{b, c::D as E, f::*}`) into `(path, alias)` pairs.
fn use_tree(toks: &[Tok], prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let mut path = prefix.to_vec();
    let mut i = 0;
    while let Some(t) = toks.get(i) {
        match t {
            Tok::Ident(s) if s == "as" => {
                if let Some(alias) = ident(toks.get(i + 1)) {
                    out.push((path.clone(), alias.to_owned()));
                }
                return;
            }
            Tok::Ident(s) => path.push(s.clone()),
            Tok::Path => {}
            Tok::Punct('*') => {
                out.push((path.clone(), "*".to_owned()));
                return;
            }
            Tok::Punct('{') => {
                let mut depth = 0;
                let mut start = i + 1;
                for (k, t) in toks.iter().enumerate().skip(i) {
                    match t {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') => depth -= 1,
                        _ => {}
                    }
                    if (depth == 1 && *t == Tok::Punct(',')) || (depth == 0) {
                        use_tree(toks.get(start..k).unwrap_or_default(), &path, out);
                        start = k + 1;
                    }
                    if depth == 0 {
                        return;
                    }
                }
                return;
            }
            _ => {}
        }
        i += 1;
    }
    if path.len() > prefix.len() {
        let alias = match path.last().map(String::as_str) {
            Some("self") => {
                path.pop();
                path.last().cloned().unwrap_or_default()
            }
            _ => path.last().cloned().unwrap_or_default(),
        };
        out.push((path, alias));
    }
}

// The graph.

pub struct Graph {
    files: BTreeMap<String, Parsed>,
    /// Module path -> file.
    modules: BTreeMap<Vec<String>, String>,
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn from_files(sources: &BTreeMap<String, String>) -> Graph {
        let modules = sources.keys().map(|f| (module_of(f), f.clone())).collect();
        let files = sources
            .iter()
            .map(|(f, text)| (f.clone(), parse(&module_of(f), text)))
            .collect();
        let mut graph = Graph {
            files,
            modules,
            edges: BTreeMap::new(),
        };
        graph.link();
        graph
    }

    fn link(&mut self) {
        let mut macro_home = BTreeMap::new();
        for (file, p) in &self.files {
            for m in &p.macros {
                macro_home.insert(m.clone(), file.clone());
            }
        }
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (file, p) in &self.files {
            let mut to = BTreeSet::new();
            for import in &p.imports {
                if let Some(abs) = self.absolute(&import.module, &import.path) {
                    to.extend(self.resolve(&abs));
                }
            }
            for (path, module) in &p.paths {
                if let Some(abs) = self.absolute(module, path) {
                    to.extend(self.resolve(&abs));
                }
            }
            for call in &p.macro_calls {
                if !p.macros.contains(call) {
                    to.extend(macro_home.get(call).cloned());
                }
            }
            to.remove(file);
            edges.insert(file.clone(), to);
        }
        self.edges = edges;
    }

    /// A path as written in `module`, from the crate root; `None` for other crates.
    fn absolute(&self, module: &[String], path: &[String]) -> Option<Vec<String>> {
        let (first, rest) = path.split_first()?;
        let mut base = module.to_vec();
        let rest = match first.as_str() {
            "crate" => {
                base.clear();
                rest
            }
            "self" => rest,
            "super" => {
                base.pop();
                let mut rest = rest;
                while let Some(("super", tail)) = rest.split_first().map(|(h, t)| (h.as_str(), t)) {
                    base.pop();
                    rest = tail;
                }
                rest
            }
            _ => {
                // A child module of this one, or a name this module imports or defines.
                let mut child = module.to_vec();
                child.push(first.clone());
                let in_scope = self.modules.contains_key(&child)
                    || self.file_of(module).is_some_and(|f| {
                        self.files.get(f).is_some_and(|p| {
                            p.imports
                                .iter()
                                .any(|i| i.alias == *first && i.module == module)
                        })
                    });
                if !in_scope {
                    return None;
                }
                path
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn file_of(&self, module: &[String]) -> Option<&String> {
        (0..=module.len())
            .rev()
            .find_map(|n| self.modules.get(module.get(..n).unwrap_or_default()))
    }

    /// The files that define what an absolute path names; else the file of its longest
    /// module prefix.
    fn resolve(&self, path: &[String]) -> BTreeSet<String> {
        self.lookup(path, 0).unwrap_or_else(|| {
            let file = (0..=path.len())
                .rev()
                .find_map(|n| self.modules.get(path.get(..n).unwrap_or_default()));
            file.cloned().into_iter().collect()
        })
    }

    /// The files that define what an absolute path names, following imports; `None` if the
    /// name is not found.
    fn lookup(&self, path: &[String], depth: usize) -> Option<BTreeSet<String>> {
        // The longest prefix that is a file module.
        let n = (0..=path.len()).rev().find(|n| {
            self.modules
                .contains_key(path.get(..*n).unwrap_or_default())
        })?;
        let module = path.get(..n).unwrap_or_default();
        let file = self.modules.get(module)?;
        let Some(name) = path.get(n) else {
            return Some(BTreeSet::from([file.clone()]));
        };
        let p = self.files.get(file)?;
        if p.defines.contains(name) {
            return Some(BTreeSet::from([file.clone()]));
        }
        if depth > 16 {
            return None;
        }
        let rest = path.get(n + 1..).unwrap_or_default();
        let mut out = BTreeSet::new();
        for import in p.imports.iter().filter(|i| i.module == module) {
            let target = if import.alias == *name {
                self.absolute(module, &import.path)
            } else if import.alias == "*" {
                self.absolute(module, &import.path).map(|mut a| {
                    a.push(name.clone());
                    a
                })
            } else {
                None
            };
            if let Some(mut target) = target {
                target.extend(rest.iter().cloned());
                out.extend(self.lookup(&target, depth + 1).into_iter().flatten());
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Every strongly connected set of more than one file, each shown as one cycle through it.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut cycles = Vec::new();
        for scc in self.components() {
            if scc.len() < 2 {
                continue;
            }
            // A shortest way from the first file back to itself, inside the component.
            let start = scc.first().cloned().unwrap_or_default();
            let mut prev: BTreeMap<String, String> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start.clone()]);
            let mut last = None;
            'bfs: while let Some(f) = queue.pop_front() {
                for g in self.edges.get(&f).into_iter().flatten() {
                    if !scc.contains(g) {
                        continue;
                    }
                    if *g == start {
                        last = Some(f.clone());
                        break 'bfs;
                    }
                    if !prev.contains_key(g) {
                        prev.insert(g.clone(), f.clone());
                        queue.push_back(g.clone());
                    }
                }
            }
            let mut cycle = vec![start.clone()];
            let mut at = last;
            while let Some(f) = at {
                if f == start {
                    break;
                }
                cycle.push(f.clone());
                at = prev.get(&f).cloned();
            }
            cycle.push(start);
            cycle.reverse();
            let rest: Vec<&String> = scc.iter().filter(|f| !cycle.contains(f)).collect();
            if let (false, Some(last)) = (rest.is_empty(), cycle.last_mut()) {
                last.push_str(&format!(" (and in the same knot: {rest:?})"));
            }
            cycles.push(cycle);
        }
        cycles
    }

    /// Strongly connected components (Tarjan), each sorted.
    fn components(&self) -> Vec<Vec<String>> {
        struct State<'a> {
            g: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            out: Vec<Vec<String>>,
        }
        fn visit<'a>(s: &mut State<'a>, v: &'a str) {
            let n = s.index.len();
            s.index.insert(v, n);
            s.low.insert(v, n);
            s.stack.push(v);
            s.on_stack.insert(v);
            let g = s.g;
            for w in g.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(lw));
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(iw));
                }
            }
            if s.low[v] == s.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    comp.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                comp.sort();
                s.out.push(comp);
            }
        }
        let mut s = State {
            g: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            out: Vec::new(),
        };
        for f in self.files.keys() {
            if !s.index.contains_key(f.as_str()) {
                visit(&mut s, f);
            }
        }
        s.out
    }

    /// Files by floor: floor 0 imports nothing in the crate, floor n only floors below n.
    /// Files in a cycle share a floor.
    pub fn floors(&self) -> Vec<Vec<String>> {
        let comps = self.components();
        let comp_of: BTreeMap<&str, usize> = comps
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.iter().map(move |f| (f.as_str(), i)))
            .collect();
        // Tarjan emits components dependencies first.
        let mut floor = vec![0usize; comps.len()];
        for (i, comp) in comps.iter().enumerate() {
            let mut f = 0;
            for file in comp {
                for dep in self.edges.get(file).into_iter().flatten() {
                    let d = comp_of[dep.as_str()];
                    if d != i {
                        f = f.max(floor[d] + 1);
                    }
                }
            }
            floor[i] = f;
        }
        let mut floors: Vec<Vec<String>> =
            vec![Vec::new(); floor.iter().max().map_or(0, |m| m + 1)];
        for (i, comp) in comps.iter().enumerate() {
            floors[floor[i]].extend(comp.iter().cloned());
        }
        for f in &mut floors {
            f.sort();
        }
        floors
    }
}
