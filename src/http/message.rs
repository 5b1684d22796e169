//! An HTTP request as the host sees it (texts ready to lend to C, forms parsed).

use super::upgrade::WebSocketUpgrade;
use crate::info::{c_text, ConnectionInfo};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use percent_encoding::percent_decode_str;
use std::ffi::{CStr, CString};
use std::sync::{Arc, OnceLock};

/// A file of a multipart form.
#[derive(Debug)]
pub struct FilePart {
    /// The form field's name.
    pub field: CString,
    /// The file's name as the client gave it ("" when none).
    pub filename: CString,
    /// Its content type ("" when none).
    pub content_type: CString,
    pub data: Bytes,
}

/// One request, complete (body read within the limit, forms parsed). Its texts for C are made
/// when first asked for: a host that answers without reading the headers (or the path) does
/// not pay for them.
#[derive(Debug)]
pub struct HttpRequest {
    head: http::request::Parts,
    texts: OnceLock<Texts>,
    headers: OnceLock<Fields>,
    form: OnceLock<Fields>,
    /// A multipart form's text fields, parsed already (that parser is asynchronous).
    multipart_fields: Option<Fields>,
    pub body: Bytes,
    pub files: Vec<FilePart>,
    /// The requester.
    pub info: Arc<ConnectionInfo>,
    /// The request's id: what `xt_http_response_defer` returns and `xt_http_reply` takes.
    pub id: u64,
}

#[derive(Debug)]
struct Texts {
    method: CString,
    path: CString,
    query: CString,
}

fn bytes_text(b: &[u8]) -> CString {
    CString::new(b.iter().copied().filter(|&c| c != 0).collect::<Vec<u8>>()).unwrap_or_default()
}

fn urlencoded(data: &[u8], out: &mut Vec<(CString, CString)>) {
    for (k, v) in form_urlencoded::parse(data) {
        out.push((c_text(&k), c_text(&v)));
    }
}

/// Form fields: names and values.
type Fields = Vec<(CString, CString)>;

/// A request as it leaves the network thread: hyper's head, the whole body, and a multipart
/// form already parsed (that parser is asynchronous). The rest of the work — texts for C,
/// the other forms — happens on the dispatching thread, which has the time.
pub(crate) struct RequestParts {
    head: http::request::Parts,
    body: Bytes,
    multipart: Option<(Fields, Vec<FilePart>)>,
    info: Arc<ConnectionInfo>,
    pub(crate) id: u64,
    /// A valid WebSocket upgrade request's offer (the host may accept it).
    pub(crate) upgrade: Option<Box<WebSocketUpgrade>>,
}

/// The request's Content-Type, and whether its media type (parameters aside) is `media`.
fn content_type<'a>(head: &'a http::request::Parts, media: &str) -> (bool, &'a str) {
    let value = head
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(media);
    (is, value)
}

impl RequestParts {
    pub(crate) async fn new(
        head: http::request::Parts,
        body: Bytes,
        info: Arc<ConnectionInfo>,
        id: u64,
    ) -> RequestParts {
        let mut multipart_form = None;
        if let (true, value) = content_type(&head, "multipart/form-data") {
            if let Ok(boundary) = multer::parse_boundary(value) {
                let (mut form, mut files) = (Vec::new(), Vec::new());
                multipart(body.clone(), boundary, &mut form, &mut files).await;
                multipart_form = Some((form, files));
            }
        }
        RequestParts {
            head,
            body,
            multipart: multipart_form,
            info,
            id,
            upgrade: None,
        }
    }
}

impl HttpRequest {
    /// The host's view of a request.
    pub(crate) fn new(parts: RequestParts) -> HttpRequest {
        let RequestParts {
            head,
            body,
            upgrade: _,
            multipart,
            info,
            id,
        } = parts;
        let (multipart_fields, files) = match multipart {
            Some((fields, files)) => (Some(fields), files),
            None => (None, Vec::new()),
        };
        HttpRequest {
            head,
            texts: OnceLock::new(),
            headers: OnceLock::new(),
            form: OnceLock::new(),
            multipart_fields,
            body,
            files,
            info,
            id,
        }
    }

    fn texts(&self) -> &Texts {
        self.texts.get_or_init(|| {
            let uri = &self.head.uri;
            Texts {
                method: c_text(self.head.method.as_str()),
                path: c_text(&percent_decode_str(uri.path()).decode_utf8_lossy()),
                query: c_text(uri.query().unwrap_or("")),
            }
        })
    }

    pub fn method(&self) -> &CStr {
        &self.texts().method
    }

    /// The path, percent-decoded, without the query.
    pub fn path(&self) -> &CStr {
        &self.texts().path
    }

    /// The raw query, without '?'; "" if none.
    pub fn query(&self) -> &CStr {
        &self.texts().query
    }

    /// Header names (lower case) and values, in the order received.
    pub fn headers(&self) -> &[(CString, CString)] {
        self.headers.get_or_init(|| {
            self.head
                .headers
                .iter()
                .map(|(k, v)| (c_text(k.as_str()), bytes_text(v.as_bytes())))
                .collect()
        })
    }

    /// Query fields, then `application/x-www-form-urlencoded` or multipart text fields.
    pub fn form(&self) -> &[(CString, CString)] {
        self.form.get_or_init(|| {
            let mut form = Vec::new();
            urlencoded(self.head.uri.query().unwrap_or("").as_bytes(), &mut form);
            if let Some(fields) = &self.multipart_fields {
                form.extend(fields.iter().cloned());
            } else if content_type(&self.head, "application/x-www-form-urlencoded").0 {
                urlencoded(&self.body, &mut form);
            }
            form
        })
    }

    /// The first header of this name, any case.
    pub fn header(&self, name: &str) -> Option<&CStr> {
        self.headers()
            .iter()
            .find(|(k, _)| k.to_bytes().eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_c_str())
    }

    /// The first form field of this name.
    pub fn form_value(&self, name: &str) -> Option<&CStr> {
        self.form()
            .iter()
            .find(|(k, _)| k.to_bytes() == name.as_bytes())
            .map(|(_, v)| v.as_c_str())
    }
}

/// Text fields into `form`, files into `files`; a malformed part ends the parse (what came
/// before it is kept).
async fn multipart(
    body: Bytes,
    boundary: String,
    form: &mut Vec<(CString, CString)>,
    files: &mut Vec<FilePart>,
) {
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = parts.next_field().await {
        let name = c_text(field.name().unwrap_or(""));
        let filename = field.file_name().map(c_text);
        let content_type = field.content_type().map(|m| c_text(m.as_ref()));
        let Ok(data) = field.bytes().await else {
            return;
        };
        match filename {
            Some(filename) => files.push(FilePart {
                field: name,
                filename,
                content_type: content_type.unwrap_or_default(),
                data,
            }),
            None => form.push((name, bytes_text(&data))),
        }
    }
}
