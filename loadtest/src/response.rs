//! Incremental HTTP/1.1 response reading with `httparse`: the head (status,
//! `Location`, `Connection: close`) and the body's framing (length, chunked,
//! until close), so pipelined answers are split exactly.

/// Largest response head accepted; more is a malformed response.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

/// What the head of a response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    pub status: u16,
    pub location: Option<&'a [u8]>,
    /// The server will close the connection after this response.
    pub close: bool,
    /// Length of the head in bytes.
    pub head_len: usize,
    pub body: Body,
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Length(u64),
    Chunked,
    UntilClose,
}

/// Why a response could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("response head does not parse")]
    Head,
    #[error("response head over 64 KiB")]
    HeadTooLarge,
    #[error("bad Content-Length")]
    ContentLength,
    #[error("bad chunked body")]
    Chunk,
}

/// Parses a response head at the start of `buf`; `Ok(None)` when more bytes
/// are needed. `head_request`: the request was HEAD (no body follows).
pub fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head<'_>>, Malformed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err(Malformed::HeadTooLarge);
            }
            return Ok(None);
        }
        Err(_) => return Err(Malformed::Head),
    };
    let status = response.code.ok_or(Malformed::Head)?;
    let mut location = None;
    let mut close = response.version == Some(0);
    let mut length = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"location") {
            location = Some(header.value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let text = std::str::from_utf8(header.value).map_err(|_| Malformed::ContentLength)?;
            let value: u64 = text.trim().parse().map_err(|_| Malformed::ContentLength)?;
            if length.is_some_and(|l| l != value) {
                return Err(Malformed::ContentLength);
            }
            length = Some(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = header
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let body = if no_body {
        Body::Length(0)
    } else if chunked {
        Body::Chunked
    } else if let Some(length) = length {
        Body::Length(length)
    } else {
        close = true;
        Body::UntilClose
    };
    Ok(Some(Head {
        status,
        location,
        close,
        head_len,
        body,
    }))
}

/// Where a body is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyState {
    /// Bytes of a length-delimited body still to come.
    Remaining(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Bytes of chunk data plus its CRLF still to come.
    ChunkData(u64),
    /// After the last chunk: trailers up to an empty line.
    Trailers,
    /// Everything until the connection closes.
    UntilClose,
}

impl BodyState {
    pub fn start(body: Body) -> Self {
        match body {
            Body::Length(n) => Self::Remaining(n),
            Body::Chunked => Self::ChunkSize,
            Body::UntilClose => Self::UntilClose,
        }
    }

    /// Consumes body bytes from `buf`; returns the bytes used and whether the
    /// body is complete.
    pub fn advance(&mut self, buf: &[u8]) -> Result<(usize, bool), Malformed> {
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            match *self {
                Self::Remaining(n) => {
                    let take = n.min(rest.len() as u64);
                    *self = Self::Remaining(n - take);
                    return Ok((used + take as usize, n == take));
                }
                Self::UntilClose => return Ok((buf.len(), false)),
                Self::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, 0))) => {
                        used += n;
                        *self = Self::Trailers;
                    }
                    Ok(httparse::Status::Complete((n, size))) => {
                        used += n;
                        *self = Self::ChunkData(size.checked_add(2).ok_or(Malformed::Chunk)?);
                    }
                    Ok(httparse::Status::Partial) => {
                        if rest.len() > 1024 {
                            return Err(Malformed::Chunk);
                        }
                        return Ok((used, false));
                    }
                    Err(_) => return Err(Malformed::Chunk),
                },
                Self::ChunkData(n) => {
                    let take = n.min(rest.len() as u64);
                    used += take as usize;
                    if take < n {
                        *self = Self::ChunkData(n - take);
                        return Ok((used, false));
                    }
                    // The chunk's closing CRLF is skipped, not checked.
                    *self = Self::ChunkSize;
                }
                Self::Trailers => {
                    let mut headers = [httparse::EMPTY_HEADER; 16];
                    match httparse::parse_headers(rest, &mut headers) {
                        Ok(httparse::Status::Complete((n, _))) => return Ok((used + n, true)),
                        Ok(httparse::Status::Partial) => {
                            if rest.len() > MAX_HEAD_BYTES {
                                return Err(Malformed::Chunk);
                            }
                            return Ok((used, false));
                        }
                        Err(_) => return Err(Malformed::Chunk),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_length() {
        let raw = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://x/\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1";
        let head = parse_head(raw, false).unwrap().unwrap();
        assert_eq!(head.status, 301);
        assert_eq!(head.location, Some(&b"https://x/"[..]));
        assert_eq!(head.body, Body::Length(3));
        let mut state = BodyState::start(head.body);
        assert_eq!(state.advance(&raw[head.head_len..]).unwrap(), (3, true));
    }

    #[test]
    fn chunked_in_pieces() {
        let body = b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nNEXT";
        let mut state = BodyState::ChunkSize;
        let mut pos = 0;
        let mut done = false;
        for end in [2, 7, 12, 20, body.len()] {
            let (used, complete) = state.advance(&body[pos..end]).unwrap();
            pos += used;
            if complete {
                done = true;
                break;
            }
        }
        assert!(done);
        assert_eq!(&body[pos..], b"NEXT");
    }

    #[test]
    fn partial_and_garbage() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nConte", false), Ok(None));
        assert_eq!(parse_head(b"garbage\r\n\r\n", false), Err(Malformed::Head));
        let head = parse_head(b"HTTP/1.0 200 OK\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(head.body, Body::UntilClose);
        assert!(head.close);
    }
}
