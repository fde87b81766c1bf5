from ollamamax_stack.cli import main

main()
