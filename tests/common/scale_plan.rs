//! Generated plans of any size across every cloud, for the scale benchmark and the fault
//! end-to-end test: EKS clusters (IRSA roles with a managed and an inline policy, and
//! Pod Identity roles), GKE clusters (a service account with a project role, or direct
//! mode), AKS clusters (a managed identity with a role at its resource group), each
//! workload its own KSA in one of a few namespaces.

/// Clusters per cloud.
pub const CLUSTERS_PER_CLOUD: usize = 2;
/// Namespaces per cluster.
pub const NAMESPACES: usize = 5;

/// The plan text of `workloads` workloads named `name`, spread round-robin over AWS
/// (two in four: IRSA and Pod Identity), GCP (one in four) and Azure (one in four).
pub fn plan_text(name: &str, workloads: usize) -> String {
    let mut text = format!("version = 1\nname = \"{name}\"\n\n");
    for c in 0..CLUSTERS_PER_CLOUD {
        text.push_str(&format!(
            "[clusters.eks{c}]\nkind = \"eks\"\naccount = \"111122223333\"\nregion = \"us-east-1\"\nname = \"eks{c}\"\ncreate_namespaces = true\n\n"
        ));
        text.push_str(&format!(
            "[clusters.gke{c}]\nkind = \"gke\"\nproject = \"bench-proj{c}\"\nlocation = \"us-central1\"\nname = \"gke{c}\"\nproject_number = \"12345678901{c}\"\ncreate_namespaces = true\n\n"
        ));
        text.push_str(&format!(
            "[clusters.aks{c}]\nkind = \"aks\"\nsubscription = \"6d9a1f3e-2b7c-4e58-9a01-3c5d7e9f1b2{c}\"\ntenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\nresource_group = \"rg-aks{c}\"\nname = \"aks{c}\"\ncreate_namespaces = true\n\n"
        ));
    }
    for i in 0..workloads {
        let c = (i / 4) % CLUSTERS_PER_CLOUD;
        let ns = (i / (4 * CLUSTERS_PER_CLOUD)) % NAMESPACES;
        let sa = format!("w{i}");
        // A project's IAM policy holds at most 1,500 principals: 1,000 per project.
        let p = i / 4000;
        // A project holds at most 100 service accounts: 50 of the plan's per project, so
        // the cluster's project keeps room for the accounts that record wid's bindings.
        let q = i / 400;
        match i % 4 {
            0 => text.push_str(&format!(
                "[[workload]]\ncluster = \"eks{c}\"\nnamespace = \"ns{ns}\"\nservice_account = \"{sa}\"\n\
                 aws.role = \"{name}-{sa}\"\n\
                 aws.managed_policies = [\"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\"]\n\
                 aws.inline_policies.read = '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":\"sqs:ReceiveMessage\",\"Resource\":\"arn:aws:sqs:us-east-1:111122223333:{sa}\"}}]}}'\n\
                 aws.tags = {{ team = \"t{ns}\" }}\n\n"
            )),
            1 => text.push_str(&format!(
                "[[workload]]\ncluster = \"eks{c}\"\nnamespace = \"ns{ns}\"\nservice_account = \"{sa}\"\n\
                 aws.role = \"{name}-{sa}\"\naws.mechanism = \"pod-identity\"\n\
                 aws.managed_policies = [\"arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess\"]\n\n"
            )),
            2 if i % 8 == 2 => text.push_str(&format!(
                "[[workload]]\ncluster = \"gke{c}\"\nnamespace = \"ns{ns}\"\nservice_account = \"{sa}\"\n\
                 gcp.service_account = \"gsa-{sa}@bench-sa{q}.iam.gserviceaccount.com\"\ngcp.roles = [{{ role = \"roles/pubsub.subscriber\", project = \"bench-roles{p}\" }}]\n\n"
            )),
            2 => text.push_str(&format!(
                "[[workload]]\ncluster = \"gke{c}\"\nnamespace = \"ns{ns}\"\nservice_account = \"{sa}\"\n\
                 gcp.direct = true\ngcp.roles = [{{ role = \"roles/storage.objectViewer\", project = \"bench-roles{p}\" }}]\n\n"
            )),
            _ => text.push_str(&format!(
                "[[workload]]\ncluster = \"aks{c}\"\nnamespace = \"ns{ns}\"\nservice_account = \"{sa}\"\n\
                 azure.identity = \"id-{sa}\"\nazure.roles = [{{ role = \"Reader\" }}]\n\
                 azure.tags = {{ team = \"t{ns}\" }}\n\n"
            )),
        }
    }
    text
}
