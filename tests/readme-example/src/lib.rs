use quiver_msgs::{Int64, Message};
use quiver_operator::prelude::*;

pub struct Scale {
    factor: i64,
}

impl Operator for Scale {
    fn manifest() -> Manifest {
        Manifest::new("scale", env!("CARGO_PKG_VERSION"), "Multiplies integers")
            .input("value", "std_msgs/Int64", "values in")
            .output("value", "std_msgs/Int64", "values out")
            .param(ParamSpec::int("factor", 2).range_int(-1000, 1000).doc("multiplier"))
    }
    fn new(_ctx: &mut Context<'_>, p: &Params) -> Result<Self> {
        Ok(Scale {
            factor: p.int("factor")?,
        })
    }
    fn on_input(&mut self, ctx: &mut Context<'_>, _input: &str, pack: DataPack) -> Result<()> {
        let v = Int64::from_arrow(pack.data()?.as_ref())?; // an empty pack is an error, not a panic
        ctx.emit(
            "value",
            Int64 {
                data: v.data * self.factor,
            }
            .to_arrow()?,
        )
    }
    fn on_param(&mut self, _ctx: &mut Context<'_>, name: &str, v: &ParamValue) -> Result<()> {
        match (name, v) {
            ("factor", ParamValue::Int(0)) => bail!("0 would erase the signal"), // refuse with a reason
            ("factor", ParamValue::Int(f)) => self.factor = *f,                  // or apply it
            _ => bail!("`{name}` cannot be set to {v}"),
        }
        Ok(())
    }
}

export_operator!(Scale);

// A unit test drives it through the same C ABI as a run, as strict as the host (kinds,
// ranges, Arrow layouts): `quiver_operator::testing::Harness`.
#[cfg(test)]
mod tests {
    use super::*;
    use quiver_operator::testing::Harness;

    #[test]
    fn scales_and_takes_a_new_factor() {
        let mut h = Harness::<Scale>::new(&[("factor", ParamValue::Int(3))]).unwrap();
        h.input("value", Some(Int64 { data: 5 }.to_arrow().unwrap())).unwrap();
        h.set_param("factor", ParamValue::Int(-2)).unwrap();
        h.input("value", Some(Int64 { data: 5 }.to_arrow().unwrap())).unwrap();
        let out: Vec<i64> = h
            .take_outputs()
            .iter()
            .map(|(_, p)| Int64::from_arrow(p.data().unwrap().as_ref()).unwrap().data)
            .collect();
        assert_eq!(out, [15, -10]);
    }
}
