from ollamamax_stack.entry import main

main()
