fn main() {
    println!("memcell");
}
