"""The deployment wing: the CPU/GPU images, training in a container, Kubernetes manifests.

    images.py         `fab build-image`: Dockerfile.cpu / .gpu built (and pushed) through docker-py
    containers.py     `fab train --docker`, `fab ci --docker`: a task run inside the image
    k8s_manifests.py  `fab k8s`: serving Deployment, Service, HPA, GPU training Job

Last in the flow: may import every wing before it.
"""
