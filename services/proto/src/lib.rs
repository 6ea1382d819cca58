//! Generated code for the `inpaint.v1` protocol. No logic lives here.

pub mod v1 {
    tonic::include_proto!("inpaint.v1");

    /// Encoded file descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("inpaint_v1_descriptor");
}
