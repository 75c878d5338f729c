mod common;

#[test]
fn set_then_get_through_the_redis_crate() {
    let srv = common::Server::start();
    let mut c = srv.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
}

#[test]
fn unknown_command_gets_redis_error_bytes() {
    let srv = common::Server::start();
    let mut raw = srv.raw();
    let expect = b"-ERR unknown command 'nosuch', with args beginning with: 'a' \r\n";
    assert_eq!(
        raw.roundtrip(&common::resp(&[b"nosuch", b"a"]), expect.len()),
        expect
    );
}
