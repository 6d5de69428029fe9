//! `abi-compat`: negates integers, built against arrow 55 while the host uses a newer arrow.
#![deny(unsafe_code)]

use std::sync::Arc;

use arrow_array::Int64Array;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use quiver_operator::{Context, DataPack, Error, Manifest, Operator, Params, Result, export_operator};

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
        let values = pack.data()?.as_primitive_opt::<Int64Type>().ok_or_else(|| Error::msg("expected Int64"))?;
        let out: Int64Array = values.iter().map(|v| v.map(|v| -v)).collect();
        ctx.emit("value", Arc::new(out))
    }
}

export_operator!(Negate);
