using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc;

namespace Identity.Server.Account;

/// <summary>The one rule for following a return URL: only a local path (no open redirect), encoded for a Location header.</summary>
public static partial class ReturnUrls
{
    /// <summary>
    /// The URL when it is local (not <c>//host</c>, not <c>/\host</c>, not absolute), with every character a URI cannot
    /// hold as such (non-ASCII, space; RFC 3986 §2.1, §3.3) percent-encoded as UTF-8; otherwise <c>null</c>. A redirect's
    /// Location is a URI reference (RFC 9110 §10.2.2) and header values are ASCII: Kestrel refuses anything else, and the
    /// sign-in that had just succeeded answered 500 without its session.
    /// </summary>
    public static string? LocalOrNull(this IUrlHelper url, string? returnUrl)
    {
        ArgumentNullException.ThrowIfNull(url);
        return !string.IsNullOrEmpty(returnUrl) && url.IsLocalUrl(returnUrl)
            ? NotUriCharacters().Replace(returnUrl, run => Uri.EscapeDataString(run.Value))
            : null;
    }

    // Outside visible ASCII; IsLocalUrl has already refused control characters. '%' stays: the URL may be encoded already.
    [GeneratedRegex(@"[^\x21-\x7E]+")]
    private static partial Regex NotUriCharacters();
}
