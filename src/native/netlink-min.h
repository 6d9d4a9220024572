/*
 * The few rtnetlink definitions ovb-launch needs. musl-gcc does not see the
 * kernel's uapi headers, so when they are missing we declare the (stable ABI)
 * structures ourselves rather than mix in glibc's include tree.
 */
#ifndef OVB_NETLINK_MIN_H
#define OVB_NETLINK_MIN_H
#if __has_include(<linux/rtnetlink.h>)
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#else
#include <stdint.h>
#include <sys/socket.h>
struct nlmsghdr {
	uint32_t nlmsg_len;
	uint16_t nlmsg_type;
	uint16_t nlmsg_flags;
	uint32_t nlmsg_seq;
	uint32_t nlmsg_pid;
};
struct nlmsgerr {
	int error;
	struct nlmsghdr msg;
};
struct ifinfomsg {
	unsigned char ifi_family;
	unsigned char __ifi_pad;
	unsigned short ifi_type;
	int ifi_index;
	unsigned ifi_flags;
	unsigned ifi_change;
};
struct rtattr {
	unsigned short rta_len;
	unsigned short rta_type;
};
struct sockaddr_nl {
	sa_family_t nl_family;
	unsigned short nl_pad;
	uint32_t nl_pid;
	uint32_t nl_groups;
};
#define NETLINK_ROUTE	  0
#define NLM_F_REQUEST	  0x1
#define NLM_F_ACK	  0x4
#define NLMSG_ERROR	  0x2
#define RTM_DELLINK	  17
#define IFLA_IFNAME	  3
#define NLMSG_ALIGNTO	  4U
#define NLMSG_ALIGN(len)  (((len) + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1))
#define NLMSG_HDRLEN	  ((int)NLMSG_ALIGN(sizeof(struct nlmsghdr)))
#define NLMSG_LENGTH(len) ((len) + NLMSG_HDRLEN)
#define NLMSG_DATA(nlh)	  ((void *)(((char *)(nlh)) + NLMSG_HDRLEN))
#define RTA_ALIGNTO	  4U
#define RTA_ALIGN(len)	  (((len) + RTA_ALIGNTO - 1) & ~(RTA_ALIGNTO - 1))
#define RTA_LENGTH(len)	  (RTA_ALIGN(sizeof(struct rtattr)) + (len))
#define RTA_DATA(rta)	  ((void *)(((char *)(rta)) + RTA_LENGTH(0)))
#endif
#endif
