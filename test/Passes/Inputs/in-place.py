# For plan-in-place.test: whether each program's cross_entropy_grad writes its gradient over its logits input (the
# same arena and offset), and how the training step's activation peak compares with the logits' size.
import json
import sys

document = json.load(open(sys.argv[1]))
stages = document.get("pipeline_stages", [document])
for plan in stages:
    buffers = plan["buffers"]
    for program in plan["programs"]:
        grads = [step for step in program["steps"] if step["op"] == "cross_entropy_grad"]
        if not grads:
            if program["name"] == "forward":
                print("forward: no cross_entropy_grad")
            continue
        for step in grads:
            logits, grad = buffers[step["in"][1]], buffers[step["out"][0]]
            same = (logits["arena"], logits["offset"]) == (grad["arena"], grad["offset"])
            print(f"{program['name']}: cross_entropy_grad writes over its logits: {same}")
            if program["name"] == "train_step":
                print(f"peak below logits x 2: {program['peak_activation_bytes'] < 2 * logits['bytes']}")
