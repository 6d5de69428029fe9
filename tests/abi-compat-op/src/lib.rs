//! `abi-compat`: negates integers, built against arrow 55 while the host uses a newer arrow.
#![deny(unsafe_code)]

use arrow_array::Array;
use quiver_msgs::{Int64, Message};
use quiver_operator::{Context, DataPack, Manifest, Operator, Params, Result, export_operator};

pub struct Negate;

impl Operator for Negate {
    fn manifest() -> Manifest {
        Manifest::new("abi-compat", env!("CARGO_PKG_VERSION"), "Negates integers (built against arrow 55)")
            .input("value", "std_msgs/Int64", "values in")
            .output("value", "std_msgs/Int64", "values negated")
    }

    fn new(_ctx: &mut Context<'_>, _params: &Params) -> Result<Self> {
        Ok(Negate)
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
        let data = pack.data()?;
        // The array was made by the host's arrow (60) and is read here with arrow 55.
        let value = Int64::from_arrow(data.as_ref())?.data;
        debug_assert_eq!(data.len(), 1);
        ctx.emit("value", Int64 { data: -value }.to_arrow()?)
    }
}

export_operator!(Negate);
