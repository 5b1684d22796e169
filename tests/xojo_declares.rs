//! The Xojo binding (`bindings/xojo/XtNet.xojo_code.txt`) against the header: there is no Xojo
//! here to compile it, so its Declares are checked as Xojo would read them. Every C call has a
//! Declare; every Declare names a header function with as many parameters, each of a Xojo type
//! that passes what C expects (Int32 ↔ int32_t, UInt64 ↔ uint64_t, UInteger ↔ size_t,
//! Boolean ↔ bool, CString ↔ `const char *`, Ptr ↔ pointers, ByRef T ↔ `T *` out-parameters),
//! a Sub exactly where C returns void; and every `Const XT_…` has the header's value, with none
//! of the header's numbers missing.

use std::collections::BTreeMap;

const HEADER: &str = include_str!("../include/xtnet.h");
const XOJO: &str = include_str!("../bindings/xojo/XtNet.xojo_code.txt");

/// A C function of the header: return type and parameter types (names dropped).
#[derive(Debug)]
struct CFunction {
    ret: String,
    params: Vec<String>,
}

fn header_functions() -> BTreeMap<String, CFunction> {
    let mut out = BTreeMap::new();
    for line in HEADER.lines() {
        let line = line.trim();
        if !line.ends_with(");") || line.starts_with('*') || line.starts_with('/') {
            continue;
        }
        // `int32_t xt_poll(` or `const char *xt_version(`: the name follows a space or a star.
        let Some(open) = line
            .match_indices("xt_")
            .map(|(i, _)| i)
            .find(|&i| i > 0 && matches!(line.as_bytes()[i - 1], b' ' | b'*'))
        else {
            continue;
        };
        let Some(paren) = line[open..].find('(').map(|i| open + i) else {
            continue;
        };
        let name = line[open..paren].to_owned();
        let ret = c_type(&format!("{}x", &line[..open]));
        let inner = &line[paren + 1..line.len() - 2];
        let params = if inner.trim() == "void" {
            Vec::new()
        } else {
            inner.split(',').map(|p| c_type(p.trim())).collect()
        };
        out.insert(name, CFunction { ret, params });
    }
    out
}

/// `const uint8_t *boundary` → `const uint8_t *`: the type without the parameter's name.
fn c_type(param: &str) -> String {
    let stars = param.matches('*').count();
    let base = param.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_');
    let base = base.trim_end_matches('*').trim().replace("struct ", "");
    if stars > 0 {
        format!("{base} {}", "*".repeat(stars))
    } else {
        base
    }
}

/// A Declare: Sub or Function, its parameters (ByRef flag, Xojo type) and return type.
#[derive(Debug)]
struct Declare {
    line: usize,
    returns: Option<String>,
    params: Vec<(bool, String)>,
}

fn declares() -> BTreeMap<String, Declare> {
    let mut out = BTreeMap::new();
    for (i, line) in XOJO.lines().enumerate() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("Declare ") else {
            continue;
        };
        let (kind, rest) = rest.split_once(' ').expect("Declare Sub|Function name");
        let (name, rest) = rest.split_once(' ').expect("a name, then Lib");
        let open = rest.find('(').expect("a parameter list");
        let close = rest.rfind(')').expect("a closing parenthesis");
        let params = rest[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (by_ref, p) = match p.strip_prefix("ByRef ") {
                    Some(p) => (true, p),
                    None => (false, p),
                };
                let (_, ty) = p.split_once(" As ").expect("name As Type");
                (by_ref, ty.trim().to_owned())
            })
            .collect();
        let returns = rest[close + 1..]
            .trim()
            .strip_prefix("As ")
            .map(|t| t.trim().to_owned());
        assert_eq!(
            kind == "Function",
            returns.is_some(),
            "line {}: a Function has a return type, a Sub none: {line}",
            i + 1
        );
        let previous = out.insert(
            name.to_owned(),
            Declare {
                line: i + 1,
                returns,
                params,
            },
        );
        assert!(previous.is_none(), "{name} is declared twice");
    }
    out
}

/// The Xojo types that pass a value of C type `c` (by value).
fn xojo_for(c: &str) -> &'static [&'static str] {
    match c {
        "int32_t" => &["Int32"],
        "uint32_t" => &["UInt32"],
        "uint16_t" => &["UInt16"],
        "int64_t" => &["Int64"],
        "uint64_t" => &["UInt64"],
        "size_t" | "uintptr_t" => &["UInteger"],
        "bool" => &["Boolean"],
        "const char *" => &["CString", "Ptr"],
        _ if c.ends_with('*') => &["Ptr"],
        _ => &[],
    }
}

/// Whether a Xojo parameter passes what C parameter `c` expects.
fn parameter_fits(by_ref: bool, xojo: &str, c: &str) -> bool {
    if by_ref {
        // ByRef T passes a pointer to a T: `size_t *` ↔ ByRef UInteger, `const char **` ↔ ByRef Ptr.
        let Some(pointee) = c.strip_suffix('*').map(str::trim) else {
            return false;
        };
        let pointee = if pointee.ends_with('*') {
            "void *".to_owned()
        } else {
            pointee.to_owned()
        };
        return xojo_for(&pointee).contains(&xojo);
    }
    xojo_for(c).contains(&xojo)
}

/// Whether a Xojo return type takes what C function returns (`const char *` comes back as a
/// Ptr to read with `.CString(0)`: borrowed text).
fn return_fits(xojo: Option<&str>, c: &str) -> bool {
    match xojo {
        None => c == "void",
        Some("Ptr") => c.ends_with('*'),
        Some(x) => !c.ends_with('*') && xojo_for(c).contains(&x),
    }
}

#[test]
fn every_c_call_has_a_declare_that_matches_it() {
    let header = header_functions();
    let xojo = declares();
    assert!(header.len() > 50, "the header parser found only {header:?}");
    let missing: Vec<&String> = header.keys().filter(|n| !xojo.contains_key(*n)).collect();
    assert!(missing.is_empty(), "C calls without a Declare: {missing:?}");
    let mut wrong = Vec::new();
    for (name, d) in &xojo {
        let Some(c) = header.get(name) else {
            wrong.push(format!("line {}: {name} is not in the header", d.line));
            continue;
        };
        if d.params.len() != c.params.len() {
            wrong.push(format!(
                "line {}: {name} has {} parameters, C {} ({:?})",
                d.line,
                d.params.len(),
                c.params.len(),
                c.params
            ));
            continue;
        }
        for (i, ((by_ref, x), ct)) in d.params.iter().zip(&c.params).enumerate() {
            if !parameter_fits(*by_ref, x, ct) {
                let by = if *by_ref { "ByRef " } else { "" };
                wrong.push(format!(
                    "line {}: {name} parameter {} is {by}{x}, C passes {ct}",
                    d.line,
                    i + 1
                ));
            }
        }
        if !return_fits(d.returns.as_deref(), &c.ret) {
            wrong.push(format!(
                "line {}: {name} returns {:?}, C returns {}",
                d.line, d.returns, c.ret
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "Declares that do not match:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_constants_are_the_headers() {
    let defines: BTreeMap<&str, i64> = HEADER
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "#define").then_some(())?;
            let name = w.next()?;
            let value = w.next()?.parse().ok()?;
            Some((name, value))
        })
        .collect();
    assert!(defines.len() > 40, "{defines:?}");
    let consts: BTreeMap<&str, &str> = XOJO
        .lines()
        .filter_map(|l| {
            let (name, value) = l.trim().strip_prefix("Const ")?.split_once('=')?;
            let name = name.trim();
            name.starts_with("XT_")
                .then(|| (name, value.split("//").next().unwrap_or("").trim()))
        })
        .collect();
    let mut wrong = Vec::new();
    for (name, value) in &defines {
        match consts.get(name) {
            None => wrong.push(format!("{name} ({value}) has no Const")),
            Some(v) if v.parse::<i64>().ok() != Some(*value) => {
                wrong.push(format!("{name} is {v} in Xojo, {value} in the header"))
            }
            Some(_) => {}
        }
    }
    // Enums the header gives as `XT_NAME = N,` (XtDispatch).
    for line in HEADER.lines() {
        let line = line.trim().trim_end_matches(',');
        if let Some((name, value)) = line.split_once(" = ") {
            if name.starts_with("XT_") && !name.contains(' ') {
                if let Ok(value) = value.trim().parse::<i64>() {
                    if consts.get(name).and_then(|v| v.parse::<i64>().ok()) != Some(value) {
                        wrong.push(format!("{name} ({value}) is missing or different in Xojo"));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "constants:\n{}", wrong.join("\n"));
}
