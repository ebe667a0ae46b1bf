//! A raw PostgreSQL protocol client over any byte stream: for sending what no driver would send.

use std::io::{Read, Write};

/// A backend message: its type byte and body.
pub type Msg = (u8, Vec<u8>);

pub struct Raw<S: Read + Write> {
    pub s: S,
}

pub fn startup_packet(user: &str, version: u32) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", "vouchdb")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// A frontend message with its type byte and length.
pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

pub fn cstr(s: &[u8]) -> Vec<u8> {
    let mut v = s.to_vec();
    v.push(0);
    v
}

/// A Parse message body: unnamed statement, no parameter types.
pub fn parse(sql: &[u8]) -> Vec<u8> {
    let mut b = cstr(b"");
    b.extend(cstr(sql));
    b.extend_from_slice(&0i16.to_be_bytes());
    frame(b'P', &b)
}

/// A Bind message: unnamed portal and statement, all parameters in `format` (0 text, 1 binary).
pub fn bind(params: &[Option<&[u8]>], format: i16) -> Vec<u8> {
    let mut b = cstr(b"");
    b.extend(cstr(b""));
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&format.to_be_bytes());
    b.extend_from_slice(&(params.len() as i16).to_be_bytes());
    for p in params {
        match p {
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
        }
    }
    b.extend_from_slice(&0i16.to_be_bytes());
    frame(b'B', &b)
}

pub fn execute_sync() -> Vec<u8> {
    let mut out = frame(b'E', &[0, 0, 0, 0, 0]);
    out.extend(frame(b'S', &[]));
    out
}

/// The fields of an ErrorResponse body: (severity, code, message).
pub fn error_fields(body: &[u8]) -> (String, String, String) {
    let (mut sev, mut code, mut msg) = (String::new(), String::new(), String::new());
    let mut rest = body;
    while let Some((&t, r)) = rest.split_first() {
        if t == 0 {
            break;
        }
        let end = r.iter().position(|&c| c == 0).unwrap_or(r.len());
        let v = String::from_utf8_lossy(&r[..end]).into_owned();
        match t {
            b'S' => sev = v,
            b'C' => code = v,
            b'M' => msg = v,
            _ => {}
        }
        rest = r.get(end + 1..).unwrap_or_default();
    }
    (sev, code, msg)
}

impl<S: Read + Write> Raw<S> {
    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
        self.s.flush().unwrap();
    }

    /// The next backend message, or None when the server closed the connection.
    pub fn recv(&mut self) -> Option<Msg> {
        let mut head = [0u8; 5];
        self.s.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len.checked_sub(4)?];
        self.s.read_exact(&mut body).ok()?;
        Some((head[0], body))
    }

    /// Messages up to and including ReadyForQuery (or up to the close of the connection).
    pub fn until_ready(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Some(m) = self.recv() {
            let done = m.0 == b'Z';
            out.push(m);
            if done {
                break;
            }
        }
        out
    }

    /// Whether the server closed the connection (after whatever it still had to say).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1024];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// Authenticate `user` with SCRAM-SHA-256 after the startup packet; panics unless the server
    /// asks for SASL and accepts.
    pub fn scram(&mut self, password: &str) {
        use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
        let (t, body) = self.recv().expect("authentication request");
        assert_eq!((t, &body[..4]), (b'R', &10u32.to_be_bytes()[..]), "expected AuthenticationSASL");
        let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
        let mut b = cstr(b"SCRAM-SHA-256");
        b.extend_from_slice(&(scram.message().len() as i32).to_be_bytes());
        b.extend_from_slice(scram.message());
        self.send(&frame(b'p', &b));
        let (t, body) = self.recv().expect("SASLContinue");
        assert_eq!(t, b'R', "{}", error_fields(&body).2);
        scram.update(&body[4..]).unwrap();
        self.send(&frame(b'p', scram.message()));
        let (t, body) = self.recv().expect("SASLFinal");
        assert_eq!(t, b'R', "{}", error_fields(&body).2);
        scram.finish(&body[4..]).unwrap();
        let rest = self.until_ready();
        assert_eq!(rest.last().map(|m| m.0), Some(b'Z'));
    }

    /// Run a simple query; returns the messages up to ReadyForQuery.
    pub fn query(&mut self, sql: &[u8]) -> Vec<Msg> {
        self.send(&frame(b'Q', &cstr(sql)));
        self.until_ready()
    }
}

/// The first ErrorResponse among `msgs`.
pub fn first_error(msgs: &[Msg]) -> Option<(String, String, String)> {
    msgs.iter().find(|m| m.0 == b'E').map(|m| error_fields(&m.1))
}

/// The first column of the DataRows among `msgs`, as text.
pub fn first_column(msgs: &[Msg]) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.0 == b'D')
        .map(|m| {
            let len = i32::from_be_bytes([m.1[2], m.1[3], m.1[4], m.1[5]]);
            if len < 0 {
                "NULL".into()
            } else {
                String::from_utf8_lossy(&m.1[6..6 + len as usize]).into_owned()
            }
        })
        .collect()
}

/// A plain connection to `port`, authenticated as admin.
pub fn connect(port: u16) -> Raw<std::net::TcpStream> {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut r = Raw { s };
    r.send(&startup_packet("admin", 196608));
    r.scram(super::PASSWORD);
    r
}
