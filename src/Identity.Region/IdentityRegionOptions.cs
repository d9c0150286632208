using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Identity.Region;

/// <summary>The <c>IdentityRegion</c> section: which region this service is, and how it reaches Identity's sync API.</summary>
public sealed class IdentityRegionOptions
{
    public const string SectionName = "IdentityRegion";

    /// <summary>The region's code (<c>eu</c>): events and the sync API are scoped to it.</summary>
    [Required(ErrorMessage = "IdentityRegion:Region is required (e.g. eu).")]
    [RegularExpression("^[a-z0-9-]{1,32}$", ErrorMessage = "IdentityRegion:Region must be 1-32 lower-case letters, digits or '-'.")]
    public string Region { get; set; } = "";

    /// <summary>Identity's base URL (the issuer), e.g. <c>https://id.example.com/</c>; https unless loopback.</summary>
    [Required(ErrorMessage = "IdentityRegion:Authority is required (Identity's URL, e.g. https://id.example.com/).")]
    public Uri? Authority { get; set; }

    /// <summary>A client-credentials client bound to <see cref="Region"/> with the <c>identity.sync</c> scope.</summary>
    [Required(ErrorMessage = "IdentityRegion:ClientId is required (a client-credentials client bound to the region).")]
    public string ClientId { get; set; } = "";

    /// <summary>Never committed: an environment variable (<c>IdentityRegion__ClientSecret</c>) or a mounted secret.</summary>
    [Required(ErrorMessage = "IdentityRegion:ClientSecret is required: set it through the environment (IdentityRegion__ClientSecret).")]
    public string ClientSecret { get; set; } = "";

    /// <summary>The replica's own database (SQLite by default; the host may choose another provider).</summary>
    [Required(ErrorMessage = "IdentityRegion:ReplicaConnectionString is required (e.g. Data Source=data/replica.db).")]
    public string ReplicaConnectionString { get; set; } = "";

    /// <summary>Resync at every start; when false, only when the replica has never been fully synced.</summary>
    public bool ResyncOnStart { get; set; } = true;

    [Range(1, 1000, ErrorMessage = "IdentityRegion:PageSize must be between 1 and 1000.")]
    public int PageSize { get; set; } = 200;

    /// <summary>
    /// Batches of events applied at once, per kind of event. SQLite has a single writer: concurrent writers only wait
    /// on its lock, so the default is one batch at a time. Raise it with a server database as the replica store.
    /// </summary>
    [Range(1, 64, ErrorMessage = "IdentityRegion:ConsumerConcurrency must be between 1 and 64.")]
    public int ConsumerConcurrency { get; set; } = 1;

    /// <summary>
    /// The most events applied in one transaction. Under load, events that arrive while a batch is being written
    /// form the next one, so batches grow with the rate and the commits per second stay few.
    /// </summary>
    [Range(1, 1000, ErrorMessage = "IdentityRegion:BatchSize must be between 1 and 1000.")]
    public int BatchSize { get; set; } = 100;

    /// <summary>
    /// How long a batch waits for more events after its first one before it is applied: the most a quiet period adds
    /// to an event's latency.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:10", ErrorMessage = "IdentityRegion:BatchWindow must be between 00:00:00 and 00:00:10.")]
    public TimeSpan BatchWindow { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Messages the broker hands the consumer ahead of time (at least <see cref="BatchSize"/> × <see cref="ConsumerConcurrency"/>).</summary>
    [Range(1, 10_000, ErrorMessage = "IdentityRegion:Prefetch must be between 1 and 10000.")]
    public int Prefetch { get; set; } = 200;

    /// <summary>The scope that grants the sync API.</summary>
    public const string SyncScope = "identity.sync";
}

/// <summary>Rules across fields: the authority is an absolute http(s) URL, and https unless it is loopback.</summary>
public sealed class IdentityRegionOptionsValidator : IValidateOptions<IdentityRegionOptions>
{
    public ValidateOptionsResult Validate(string? name, IdentityRegionOptions options) =>
        AuthorityUrl.Validate(options.Authority, "IdentityRegion:Authority");
}

/// <summary>The one rule for an Identity URL a regional service is configured with.</summary>
public static class AuthorityUrl
{
    /// <summary>Plain HTTP only for a loopback authority (a local Identity), never over a network.</summary>
    public static bool IsLoopbackHttp(Uri? authority) =>
        authority is { IsAbsoluteUri: true } uri && uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback;

    /// <summary>An absolute http(s) URL, https unless loopback; a missing one is left to <c>[Required]</c>.</summary>
    public static ValidateOptionsResult Validate(Uri? authority, string key)
    {
        if (authority is null)
        {
            return ValidateOptionsResult.Skip;
        }

        if (!authority.IsAbsoluteUri || (authority.Scheme != Uri.UriSchemeHttps && authority.Scheme != Uri.UriSchemeHttp))
        {
            return ValidateOptionsResult.Fail($"{key} must be an absolute http(s) URL.");
        }

        return authority.Scheme == Uri.UriSchemeHttp && !IsLoopbackHttp(authority)
            ? ValidateOptionsResult.Fail($"{key} must use https unless it is a loopback address (127.0.0.1, localhost).")
            : ValidateOptionsResult.Success;
    }
}
