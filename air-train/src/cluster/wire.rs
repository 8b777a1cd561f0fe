//! The TCP collective's frames: a tag, a root (for broadcasts), and `f64` values or a UTF-8
//! message, little-endian and length-prefixed.

use std::io::{self, Read, Write};

use crate::collective::Op;

/// What a frame carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// A rank's part of an operation.
    Call(Op, Vec<f64>),
    /// The root's answer to an operation.
    Result(Vec<f64>),
    /// The operation failed (the calls diverged); every rank fails with this message.
    Failed(String),
    /// The run is aborted, with the reason.
    Abort(String),
    /// A rank joining: its rank and the world size it expects.
    Hello { rank: u64, world_size: u64 },
    /// The root's answer once every rank has joined.
    Welcome,
}

const CALL: u8 = 1;
const RESULT: u8 = 2;
const FAILED: u8 = 3;
const ABORT: u8 = 4;
const HELLO: u8 = 5;
const WELCOME: u8 = 6;

/// The most values one frame may announce (8 GiB of `f64`): a corrupt length fails instead
/// of allocating without bound.
const MAX_VALUES: u64 = 1 << 30;

fn op_code(op: Op) -> (u8, u64) {
    match op {
        Op::Mean => (0, 0),
        Op::Sum => (1, 0),
        Op::Broadcast(root) => (2, root as u64),
        Op::Barrier => (3, 0),
        Op::Finish => (4, 0),
    }
}

fn op_from(code: u8, root: u64) -> io::Result<Op> {
    Ok(match code {
        0 => Op::Mean,
        1 => Op::Sum,
        2 => Op::Broadcast(usize::try_from(root).map_err(|_| invalid("broadcast root"))?),
        3 => Op::Barrier,
        4 => Op::Finish,
        _ => return Err(invalid("operation code")),
    })
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed frame: bad {what}"),
    )
}

/// Writes one frame (one `write_all` of the whole buffer).
pub(crate) fn write(stream: &mut impl Write, frame: &Frame) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut values = |tag: u8, op: u8, root: u64, v: &[f64]| {
        buf.push(tag);
        buf.push(op);
        buf.extend(root.to_le_bytes());
        buf.extend((v.len() as u64).to_le_bytes());
        for x in v {
            buf.extend(x.to_le_bytes());
        }
    };
    match frame {
        Frame::Call(op, v) => {
            let (code, root) = op_code(*op);
            values(CALL, code, root, v);
        }
        Frame::Result(v) => values(RESULT, 0, 0, v),
        Frame::Hello { rank, world_size } => {
            buf.push(HELLO);
            buf.push(0);
            buf.extend(rank.to_le_bytes());
            buf.extend(world_size.to_le_bytes());
        }
        Frame::Welcome => {
            buf.extend([WELCOME, 0]);
            buf.extend(0u64.to_le_bytes());
            buf.extend(0u64.to_le_bytes());
        }
        Frame::Failed(m) | Frame::Abort(m) => {
            buf.push(if matches!(frame, Frame::Failed(_)) {
                FAILED
            } else {
                ABORT
            });
            buf.push(0);
            buf.extend(0u64.to_le_bytes());
            buf.extend((m.len() as u64).to_le_bytes());
            buf.extend(m.as_bytes());
        }
    }
    stream.write_all(&buf)?;
    stream.flush()
}

fn u64_from(stream: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    stream.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Reads one frame.
pub(crate) fn read(stream: &mut impl Read) -> io::Result<Frame> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    let root = u64_from(stream)?;
    let len = u64_from(stream)?;
    let values = |stream: &mut dyn Read| -> io::Result<Vec<f64>> {
        if len > MAX_VALUES {
            return Err(invalid("length"));
        }
        let mut bytes = vec![0u8; len as usize * 8];
        stream.read_exact(&mut bytes)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    };
    let text = |stream: &mut dyn Read| -> io::Result<String> {
        if len > 1 << 20 {
            return Err(invalid("message length"));
        }
        let mut bytes = vec![0u8; len as usize];
        stream.read_exact(&mut bytes)?;
        String::from_utf8(bytes).map_err(|_| invalid("message"))
    };
    Ok(match head[0] {
        CALL => Frame::Call(op_from(head[1], root)?, values(stream)?),
        RESULT => Frame::Result(values(stream)?),
        FAILED => Frame::Failed(text(stream)?),
        ABORT => Frame::Abort(text(stream)?),
        HELLO => Frame::Hello {
            rank: root,
            world_size: len,
        },
        WELCOME => Frame::Welcome,
        _ => return Err(invalid("tag")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        for frame in [
            Frame::Call(Op::Mean, vec![1.5, -2.0]),
            Frame::Call(Op::Broadcast(3), vec![]),
            Frame::Call(Op::Finish, vec![]),
            Frame::Result(vec![f64::MAX, 0.1]),
            Frame::Failed("calls diverged".to_owned()),
            Frame::Abort("rank 2 lost".to_owned()),
            Frame::Hello {
                rank: 2,
                world_size: 4,
            },
            Frame::Welcome,
        ] {
            let mut buf = Vec::new();
            write(&mut buf, &frame).unwrap();
            assert_eq!(read(&mut buf.as_slice()).unwrap(), frame);
        }
        assert!(read(&mut [9u8; 18].as_slice()).is_err());
        let mut huge = vec![RESULT, 0];
        huge.extend(0u64.to_le_bytes());
        huge.extend(u64::MAX.to_le_bytes());
        assert!(read(&mut huge.as_slice()).is_err());
    }
}
