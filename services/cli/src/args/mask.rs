//! `inpaint mask`: mask images and the operator flags, kept in the order
//! they were typed.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args};
use inpaint_cli::mask_ops;
use inpaint_proto::v1::MaskOp;

#[derive(Args)]
pub struct MaskArgs {
    /// Mask images (one region each): white, or transparent if they have
    /// alpha, is "on".
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,

    /// Output PNG: the union of the regions after the operations.
    #[arg(short, long)]
    pub output: PathBuf,

    /// Values >= LEVEL become 255, others 0.
    #[arg(long, value_name = "LEVEL", action = ArgAction::Append)]
    pub threshold: Vec<String>,
    /// Repaint everything but the mask.
    #[arg(long, num_args = 0, default_missing_value = "", action = ArgAction::Append)]
    pub invert: Vec<String>,
    /// Grow (>0) or shrink (<0) by a disc of PIXELS.
    #[arg(long, value_name = "PIXELS", allow_hyphen_values = true, action = ArgAction::Append)]
    pub grow: Vec<String>,
    /// Grow (>0) or shrink (<0) by a square of PIXELS.
    #[arg(long, value_name = "PIXELS", allow_hyphen_values = true, action = ArgAction::Append)]
    pub grow_square: Vec<String>,
    /// Soft edge outward from the mask, 0 at RADIUS.
    #[arg(long, value_name = "RADIUS", action = ArgAction::Append)]
    pub feather: Vec<String>,
    /// Gaussian blur of the mask.
    #[arg(long, value_name = "SIGMA", action = ArgAction::Append)]
    pub blur: Vec<String>,
    /// Fill background enclosed by the mask.
    #[arg(long, num_args = 0, default_missing_value = "", action = ArgAction::Append)]
    pub fill_holes: Vec<String>,
    /// Move the mask by X,Y pixels.
    #[arg(long, value_name = "X,Y", allow_hyphen_values = true, action = ArgAction::Append)]
    pub offset: Vec<String>,
    /// Keep the COUNT largest connected pieces.
    #[arg(long, value_name = "COUNT", action = ArgAction::Append)]
    pub keep_largest: Vec<String>,
    /// Keep pieces whose area / image area is in MIN..MAX.
    #[arg(long, value_name = "MIN,MAX", action = ArgAction::Append)]
    pub area_range: Vec<String>,
    /// Join the regions: merge, intersect, subtract, merge-invert.
    #[arg(long, value_name = "MODE", action = ArgAction::Append)]
    pub combine: Vec<String>,
}

/// The mask subcommand's operation flags in command-line order.
pub fn ops_in_order(matches: &ArgMatches) -> anyhow::Result<Vec<MaskOp>> {
    let mut found: Vec<(usize, MaskOp)> = Vec::new();
    for (name, _) in mask_ops::OPERATIONS {
        let id = name.replace('-', "_");
        // Flags report defaults too; only what was typed counts.
        if matches.value_source(&id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let Some(indices) = matches.indices_of(&id) else {
            continue;
        };
        let values: Vec<Option<String>> = match matches.try_get_many::<String>(&id) {
            Ok(Some(v)) => v.map(|s| Some(s.clone())).collect(),
            _ => vec![None; indices.len()],
        };
        for (index, value) in indices.zip(values) {
            let op = mask_ops::parse_op(name, value.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
            found.push((index, op));
        }
    }
    found.sort_by_key(|(index, _)| *index);
    Ok(found.into_iter().map(|(_, op)| op).collect())
}
