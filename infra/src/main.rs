fn main() {
    eprintln!("tally: the local cloud CLI is being built (issue 3); the library already provisions template.yaml for the tests");
    std::process::exit(2);
}
