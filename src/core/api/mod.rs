//! The HTTP edge's rules: bearer tokens (`jwt`), roles (`auth`), the route table
//! (`routes`), the error shape (`error`) and strict JSON bodies (`json_body`).

pub mod auth;
pub mod error;
pub mod json_body;
pub mod jwt;
pub mod ops;
pub mod portal;
pub mod routes;
