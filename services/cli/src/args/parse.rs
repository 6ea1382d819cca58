//! Value parsers for flags that take sizes, points and boxes.

use inpaint_proto::v1::Box;

pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or("expected WIDTHxHEIGHT, e.g. 512x512")?;
    Ok((
        w.parse().map_err(|e| format!("width: {e}"))?,
        h.parse().map_err(|e| format!("height: {e}"))?,
    ))
}

fn numbers<const N: usize>(s: &str, shape: &str) -> Result<[f32; N], String> {
    let parts: Vec<f32> = s
        .split(',')
        .map(|v| v.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("expected {shape}: {e}"))?;
    parts.try_into().map_err(|_| format!("expected {shape}"))
}

pub fn parse_point(s: &str) -> Result<(f32, f32), String> {
    let [x, y] = numbers::<2>(s, "X,Y")?;
    Ok((x, y))
}

pub fn parse_box(s: &str) -> Result<Box, String> {
    let [x, y, width, height] = numbers::<4>(s, "X,Y,W,H")?;
    let whole = |v: f32| {
        (v >= 0.0 && v.fract() == 0.0)
            .then_some(v as u32)
            .ok_or("box values are whole pixels")
    };
    Ok(Box {
        x: whole(x)?,
        y: whole(y)?,
        width: whole(width)?,
        height: whole(height)?,
    })
}
