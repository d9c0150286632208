using System.Net;
using Identity.Core.Policies;

namespace Identity.Core.UnitTests.Policies;

public sealed class IpRangesTests
{
    private static bool Allows(string address, params string[] ranges) => IpRanges.Allows(ranges, IPAddress.Parse(address));

    [Theory]
    [InlineData("10.0.0.0")] // first address
    [InlineData("10.255.255.255")] // last address
    [InlineData("10.1.2.3")]
    public void Allows_AddressInsideSlash8_IsAllowed(string address)
    {
        Assert.True(Allows(address, "10.0.0.0/8"));
    }

    [Theory]
    [InlineData("9.255.255.255")] // just below
    [InlineData("11.0.0.0")] // just above
    public void Allows_AddressJustOutsideSlash8_IsRefused(string address)
    {
        Assert.False(Allows(address, "10.0.0.0/8"));
    }

    [Theory]
    [InlineData("192.0.2.10", true)]
    [InlineData("192.0.2.9", false)]
    [InlineData("192.0.2.11", false)]
    public void Allows_Slash32_MatchesThatAddressOnly(string address, bool allowed)
    {
        Assert.Equal(allowed, Allows(address, "192.0.2.10/32"));
    }

    [Theory]
    [InlineData("2001:db8:1:2::", true)] // first address of the /64
    [InlineData("2001:db8:1:2:ffff:ffff:ffff:ffff", true)] // last address
    [InlineData("2001:db8:1:1:ffff:ffff:ffff:ffff", false)] // just below
    [InlineData("2001:db8:1:3::", false)] // just above
    public void Allows_Ipv6Slash64_Edges(string address, bool allowed)
    {
        Assert.Equal(allowed, Allows(address, "2001:db8:1:2::/64"));
    }

    [Theory]
    [InlineData("2001:db8::1", true)]
    [InlineData("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true)]
    [InlineData("2001:db9::", false)]
    public void Allows_Ipv6Slash32(string address, bool allowed)
    {
        Assert.Equal(allowed, Allows(address, "2001:db8::/32"));
    }

    [Theory]
    [InlineData("::ffff:10.1.2.3", true)]
    [InlineData("::ffff:10.0.0.0", true)]
    [InlineData("::ffff:11.0.0.0", false)]
    [InlineData("::ffff:9.255.255.255", false)]
    public void Allows_Ipv4MappedIpv6Address_IsComparedAsIpv4(string address, bool allowed)
    {
        Assert.Equal(allowed, Allows(address, "10.0.0.0/8"));
    }

    [Theory]
    [InlineData("10.1.2.3", true)]
    [InlineData("11.0.0.0", false)]
    public void Allows_Ipv4AddressAgainstRangeInMappedForm_IsCompared(string address, bool allowed)
    {
        Assert.Equal(allowed, Allows(address, "::ffff:10.0.0.0/104"));
    }

    [Fact]
    public void Allows_Ipv4AddressAgainstIpv6OnlyList_IsRefused()
    {
        Assert.False(Allows("10.1.2.3", "2001:db8::/32"));
        Assert.False(Allows("2001:db8::1", "10.0.0.0/8"));
    }

    [Fact]
    public void Allows_SecondRangeMatches_IsAllowed()
    {
        Assert.True(Allows("2001:db8::1", "10.0.0.0/8", "2001:db8::/32"));
    }

    [Theory]
    [InlineData("10.1.2.3")]
    [InlineData("2001:db8::1")]
    [InlineData("::ffff:8.8.8.8")]
    public void Allows_EmptyList_AllowsAnyAddress(string address)
    {
        Assert.True(Allows(address));
        Assert.True(IpRanges.Allows([], null));
    }

    [Fact]
    public void Allows_UnknownAddressWithNonEmptyList_IsRefused()
    {
        Assert.False(IpRanges.Allows(["0.0.0.0/0"], null));
    }

    [Fact]
    public void Allows_UnparsableEntry_FailsClosed()
    {
        Assert.False(Allows("10.1.2.3", "not-a-range", "10.0.0.0/8"));
    }

    [Theory]
    [InlineData("0.0.0.0/0")]
    [InlineData("::/0")]
    [InlineData("10.0.0.0/8")]
    [InlineData("192.0.2.10/32")]
    [InlineData("2001:db8::/32")]
    [InlineData("2001:DB8::/32")]
    [InlineData("2001:db8::1/128")]
    [InlineData("::ffff:10.0.0.0/104")]
    public void TryParseRange_CidrRange_IsAccepted(string cidr)
    {
        Assert.True(IpRanges.TryParseRange(cidr, out _, out var problem), problem);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.0.0.0")] // no prefix length
    [InlineData("10.0.0.0/33")]
    [InlineData("2001:db8::/129")]
    [InlineData("10.0.0.0/-1")]
    [InlineData(" 10.0.0.0/8")]
    [InlineData("010.0.0.0/8")] // octal: would be 8.0.0.0/8
    [InlineData("10/8")] // would be 0.0.0.10 -> 0.0.0.0/8
    [InlineData("0x0a.0.0.0/8")]
    [InlineData("fe80::%2/64")] // a zone has no meaning in a range
    [InlineData("example.com/8")]
    public void TryParseRange_NotACidrRange_IsRefused(string cidr)
    {
        Assert.False(IpRanges.TryParseRange(cidr, out _, out var problem));
        Assert.StartsWith("Not a CIDR range", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10.1.0.0/8", "10.0.0.0/8")]
    [InlineData("192.0.2.1/24", "192.0.2.0/24")]
    [InlineData("2001:db8::1/64", "2001:db8::/64")]
    public void TryParseRange_BitsSetAfterPrefix_IsRefusedNamingTheRange(string cidr, string range)
    {
        Assert.False(IpRanges.TryParseRange(cidr, out _, out var problem));
        Assert.Contains(range, problem, StringComparison.Ordinal);
    }
}
