using System.ComponentModel.DataAnnotations;
using Identity.Region;
using Microsoft.Extensions.Options;

namespace Identity.RegionSample.SignIn;

/// <summary>The <c>Identity</c> section: which authority this regional app signs in through, and as which client.</summary>
public sealed class RegionSignInOptions
{
    public const string SectionName = "Identity";

    /// <summary>The issuer, e.g. <c>http://localhost:5080/</c>; https unless it is a loopback address.</summary>
    [Required(ErrorMessage = "Identity:Authority is required (the issuer URL, e.g. http://localhost:5080/).")]
    public Uri? Authority { get; set; }

    [Required(ErrorMessage = "Identity:ClientId is required (e.g. region-eu).")]
    public string ClientId { get; set; } = "";

    /// <summary>Never committed: user secrets, an environment variable (<c>Identity__ClientSecret</c>) or a mounted secret.</summary>
    [Required(ErrorMessage = "Identity:ClientSecret is required: set it through the environment (Identity__ClientSecret), never in a committed file.")]
    public string ClientSecret { get; set; } = "";

    /// <summary>Shown on the pages and part of every cookie name, so that regions on one host keep apart.</summary>
    [Required(ErrorMessage = "Identity:Region is required (e.g. eu).")]
    [RegularExpression("^[a-z0-9-]{1,32}$", ErrorMessage = "Identity:Region must be 1-32 lower-case letters, digits or '-'.")]
    public string Region { get; set; } = "";

    /// <summary>Plain-HTTP metadata is allowed only for a loopback authority (a local Identity), never over a network.</summary>
    public bool IsLoopbackHttp => AuthorityUrl.IsLoopbackHttp(Authority);

    /// <summary>Cookies ignore ports: two regions on 127.0.0.1 must not share a cookie name.</summary>
    public string CookieName => $"regionsample-{Region}";
}

/// <summary>Rules across fields: the authority is an absolute http(s) URL, and https unless it is loopback.</summary>
public sealed class RegionSignInOptionsValidator : IValidateOptions<RegionSignInOptions>
{
    public ValidateOptionsResult Validate(string? name, RegionSignInOptions options) =>
        AuthorityUrl.Validate(options.Authority, "Identity:Authority");
}
