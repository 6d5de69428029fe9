//! Two transports (two Zenoh sessions over loopback TCP) in one test process: a big frame goes
//! through shared memory and the receiver's Arrow buffer points into the mapped segment (no
//! copy); a small one goes as a plain put; both decode to the data sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use arrow_buffer::Buffer;
use quiver_runtime::wire;
use quiver_runtime::{Header, PackId, Transport};
use quiver_zenoh::{Endpoints, Tuning, ZenohTransport};

/// Address ranges of this process's mappings of `/dev/shm/*.zenoh`.
fn shm_ranges() -> Vec<(usize, usize)> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains("/dev/shm/") && l.contains(".zenoh"))
        .filter_map(|l| {
            let (a, b) = l.split_whitespace().next()?.split_once('-')?;
            Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?))
        })
        .collect()
}

fn in_shm(ptr: *const u8) -> bool {
    let p = ptr as usize;
    shm_ranges().iter().any(|&(a, b)| a <= p && p < b)
}

fn frame(len: usize, seq: u64) -> wire::Encoded {
    let array: arrow_array::ArrayRef = Arc::new(arrow_array::UInt8Array::from(vec![seq as u8; len]));
    let header = Header {
        seq,
        timestamp_ns: 1,
        is_updated: true,
    };
    wire::encode(&PackId::new("src", "out", "bench/Bytes"), &header, Some(&array)).unwrap()
}

#[test]
fn big_frames_arrive_in_shared_memory_without_a_copy() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("tcp/127.0.0.1:{port}");
    let receiver_side = ZenohTransport::open_tuned(
        &Endpoints {
            listen: vec![endpoint.clone()],
            connect: vec![],
        },
        &Tuning::default(),
    )
    .unwrap();
    let sender_side = ZenohTransport::open_tuned(
        &Endpoints {
            listen: vec![],
            connect: vec![endpoint],
        },
        &Tuning::default(),
    )
    .unwrap();
    assert!(sender_side.pool_bytes() > 0, "shared memory is available here");
    let (tx, rx) = sync_channel::<(Buffer, bool)>(4);
    let _receiver = receiver_side
        .receiver(
            "test/shm",
            Box::new(move |buf: Buffer| {
                let mapped = in_shm(buf.as_ptr());
                let _ = tx.send((buf, mapped));
            }),
        )
        .unwrap();
    let sender = sender_side
        .sender("test/shm", quiver_runtime::Delivery::Lossless)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sender.matched() {
        assert!(Instant::now() < deadline, "never matched");
        std::thread::sleep(Duration::from_millis(5));
    }

    // 1 MiB: through shared memory, read in place.
    sender.send(&frame(1 << 20, 1)).unwrap();
    let (buf, mapped) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(mapped, "the received frame is the mapped segment, not a copy");
    assert_eq!(buf.as_ptr() as usize % 64, 0, "64-byte aligned");
    let pack = wire::decode(&buf).unwrap();
    let data = pack.data.unwrap();
    let values = data.as_any().downcast_ref::<arrow_array::UInt8Array>().unwrap();
    assert_eq!((values.len(), values.value(0), pack.header.seq), (1 << 20, 1, 1));
    let values_ptr = values.values().inner().as_ptr() as usize;
    let frame_ptr = buf.as_ptr() as usize;
    assert!(
        (frame_ptr..frame_ptr + buf.len()).contains(&values_ptr),
        "the decoded array's values are inside the received frame"
    );

    // 8 B: a plain put (smaller than the shared-memory threshold), same contents.
    sender.send(&frame(8, 2)).unwrap();
    let (buf, mapped) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(!mapped, "a small frame is a plain put");
    let pack = wire::decode(&buf).unwrap();
    assert_eq!((pack.data.unwrap().len(), pack.header.seq), (8, 2));
    sender_side.close();
    receiver_side.close();
}
