//! The XML side of the awsQuery protocol: a small writer for response bodies, the
//! `<ErrorResponse>` shape, and the URL-encoding AWS applies to policy documents.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::escape::escape;

/// Characters AWS leaves unencoded in policy documents: RFC 3986 unreserved ones.
const DOCUMENT_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a policy document as IAM returns it (`{"V` becomes `%7B%22V`).
///
/// AWS documents this for `AssumeRolePolicyDocument` and `GetRolePolicy`'s
/// `PolicyDocument`: "The policy document returned in this structure is URL-encoded
/// compliant with RFC 3986".
pub(crate) fn url_encode_document(document: &str) -> String {
    utf8_percent_encode(document, DOCUMENT_KEEP).to_string()
}

/// Builds an XML body element by element; text is escaped, element names are trusted
/// (they are literals in this crate).
#[derive(Debug, Default)]
pub(crate) struct Xml {
    out: String,
}

impl Xml {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `<name>text</name>`.
    pub(crate) fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.out.push_str(&escape(text));
        self.close(name)
    }

    /// `<name>text</name>` when `text` is set.
    pub(crate) fn opt_leaf(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(text) = text {
            self.leaf(name, text);
        }
        self
    }

    pub(crate) fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub(crate) fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// A list of strings as awsQuery renders it: `<name><member>a</member>…</name>`.
    pub(crate) fn string_list<'a>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = &'a str>,
    ) -> &mut Self {
        self.open(name);
        for item in items {
            self.leaf("member", item);
        }
        self.close(name)
    }

    /// A tag list: `<name><member><Key>k</Key><Value>v</Value></member>…</name>`.
    pub(crate) fn tags<'a>(
        &mut self,
        name: &str,
        tags: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> &mut Self {
        self.open(name);
        for (key, value) in tags {
            self.open("member")
                .leaf("Key", key)
                .leaf("Value", value)
                .close("member");
        }
        self.close(name)
    }

    /// `<IsTruncated>` and, when truncated, `<Marker>`.
    pub(crate) fn paging(&mut self, marker: Option<&str>) -> &mut Self {
        self.leaf(
            "IsTruncated",
            if marker.is_some() { "true" } else { "false" },
        );
        self.opt_leaf("Marker", marker)
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// The awsQuery success envelope:
/// `<{op}Response xmlns=…><{op}Result>…</{op}Result><ResponseMetadata>…`.
/// Operations without output (`result` is `None`) have no `Result` element.
pub(crate) fn success_body(
    namespace: &str,
    op: &str,
    result: Option<&str>,
    request_id: &str,
) -> String {
    let mut out =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op}Response xmlns=\"{namespace}\">");
    if let Some(result) = result {
        out.push_str(&format!("<{op}Result>{result}</{op}Result>"));
    }
    out.push_str(&format!(
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{op}Response>",
        escape(request_id)
    ));
    out
}

/// The awsQuery error envelope, as IAM and STS send it.
pub(crate) fn error_body(sender: bool, code: &str, message: &str, request_id: &str) -> String {
    let kind = if sender { "Sender" } else { "Receiver" };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn leaf_text_is_escaped() {
        let mut xml = Xml::new();
        xml.leaf("Description", "a<b & \"c\" 'd'>");
        assert_eq!(
            xml.finish(),
            "<Description>a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;</Description>"
        );
    }

    #[test]
    fn lists_and_tags_use_member_elements() {
        let tags = BTreeMap::from([("team".to_owned(), "a&b".to_owned())]);
        let mut xml = Xml::new();
        xml.string_list("ClientIDList", ["sts.amazonaws.com"])
            .tags("Tags", &tags)
            .paging(None);
        assert_eq!(
            xml.finish(),
            "<ClientIDList><member>sts.amazonaws.com</member></ClientIDList>\
             <Tags><member><Key>team</Key><Value>a&amp;b</Value></member></Tags>\
             <IsTruncated>false</IsTruncated>"
        );
    }

    #[test]
    fn success_envelope_without_result_keeps_metadata() {
        let body = success_body("urn:x", "DeleteRole", None, "r-1");
        assert!(body.ends_with(
            "<DeleteRoleResponse xmlns=\"urn:x\"><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></DeleteRoleResponse>"
        ));
        let body = success_body("urn:x", "GetRole", Some("<Role/>"), "r-2");
        assert!(body.contains("<GetRoleResult><Role/></GetRoleResult>"));
    }

    #[test]
    fn error_envelope_matches_the_wrapped_error_shape() {
        let body = error_body(
            true,
            "NoSuchEntity",
            "The role with name <x> cannot be found.",
            "r",
        );
        assert!(body.ends_with(
            "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code>\
             <Message>The role with name &lt;x&gt; cannot be found.</Message></Error>\
             <RequestId>r</RequestId></ErrorResponse>"
        ));
        assert!(error_body(false, "ServiceFailure", "m", "r").contains("<Type>Receiver</Type>"));
    }

    #[test]
    fn documents_are_percent_encoded_like_aws() {
        assert_eq!(
            url_encode_document("{\"Version\": \"2012-10-17\", \"a.b_c~d\":[]}"),
            "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22a.b_c~d%22%3A%5B%5D%7D"
        );
        assert_eq!(url_encode_document("é"), "%C3%A9");
    }
}
