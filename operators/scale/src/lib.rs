//! `scale`: a transform. Every value in is sent on as `value * factor + offset`. `factor` can
//! change while running; a factor of 0 is refused (it would erase the signal).
#![deny(unsafe_code)]

use quiver_msgs::{Int64, Message};
use quiver_operator::prelude::*;

pub struct Scale {
    factor: i64,
    offset: i64,
}

impl Operator for Scale {
    fn manifest() -> Manifest {
        Manifest::new("scale", env!("CARGO_PKG_VERSION"), "Multiplies and offsets integers")
            .input("value", "std_msgs/Int64", "values in")
            .output("value", "std_msgs/Int64", "value * factor + offset")
            .param(
                ParamSpec::int("factor", 2)
                    .range_int(-1_000_000, 1_000_000)
                    .doc("multiplier (not 0)"),
            )
            .param(ParamSpec::int("offset", 0).doc("added after multiplying"))
    }

    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        let factor = p.int("factor")?;
        if factor == 0 {
            bail!("factor 0 would erase the signal");
        }
        Ok(Scale {
            factor,
            offset: p.int("offset")?,
        })
    }

    fn on_input(&mut self, ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
        let value = Int64::from_arrow(pack.data()?.as_ref())?.data;
        let out = Int64 {
            data: value.wrapping_mul(self.factor).wrapping_add(self.offset),
        };
        ctx.emit("value", out.to_arrow()?)
    }

    fn on_param(&mut self, _ctx: &mut Context<'_>, name: &str, value: &ParamValue) -> Result<()> {
        match (name, value) {
            ("factor", ParamValue::Int(0)) => bail!("factor 0 would erase the signal"),
            ("factor", ParamValue::Int(f)) => self.factor = *f,
            ("offset", ParamValue::Int(o)) => self.offset = *o,
            _ => bail!("parameter `{name}` cannot be set to {value}"),
        }
        Ok(())
    }
}

export_operator!(Scale);

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_operator::testing::{CallError, Harness};

    #[test]
    fn scales_and_refuses_a_zero_factor() {
        let mut h = Harness::<Scale>::new(&[("factor", ParamValue::Int(3)), ("offset", ParamValue::Int(1))]).unwrap();
        h.input("value", Some(Int64 { data: 5 }.to_arrow().unwrap())).unwrap();
        let out = h.take_outputs();
        let v = Int64::from_arrow(out[0].1.data().unwrap().as_ref()).unwrap();
        assert_eq!(v.data, 16);
        assert_eq!(
            h.set_param("factor", ParamValue::Int(0)).unwrap_err(),
            CallError::Error("factor 0 would erase the signal".into())
        );
        assert!(Harness::<Scale>::new(&[("factor", ParamValue::Int(0))]).is_err());
    }
}
