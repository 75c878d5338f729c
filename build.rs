//! Compiles the small C helper that does INCRBYFLOAT in `long double`.

fn main() {
    println!("cargo:rerun-if-changed=csrc/longdouble.c");
    cc::Build::new()
        .file("csrc/longdouble.c")
        .warnings(true)
        .compile("ferrokv_longdouble");
}
